//! The `artfs mount` and `artfs unmount` processes: start a daemon and wait until its mount is
//! ready, serve a mount until it is unmounted or signalled, and unmount.
//!
//! Background mode re-executes the same command line with `--foreground`, detached in its own
//! process group with its output in a log file, and returns once `/proc/self/mountinfo` shows
//! the mount (or reports the daemon's last log lines if it died first). The daemon ends, with
//! exit code 0, when the mount goes away (`artfs unmount`, `fusermount3 -u`, `umount`) or on
//! SIGINT/SIGTERM, which unmount first.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::signal::unix::{SignalKind, signal};

use crate::fs::fuse::Mount;
use crate::fs::{ArtifactFs, FSTYPE_NAME};

/// The filesystem type artfs mounts show in `/proc/self/mountinfo` and `mount`.
pub const FSTYPE: &str = "fuse.artfs";
/// How long `artfs mount` waits for the daemon's mount to appear.
pub const MOUNT_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// After SIGINT/SIGTERM, how long the daemon waits for in-flight requests once unmounted.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause between checks while a mount appears or disappears.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount point {}: {source}", path.display())]
    MountPoint {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} is a dead artfs mount (its daemon is gone); clear it with `fusermount3 -u {}` and mount again",
        path.display(), path.display()
    )]
    Stale { path: PathBuf },
    #[error("{} is already an artfs mount; unmount it first with `artfs unmount {}`", path.display(), path.display())]
    AlreadyMounted { path: PathBuf },
    #[error("{} is not an artfs mount", path.display())]
    NotMounted { path: PathBuf },
    #[error("cannot mount at {}: {source}", path.display())]
    Mount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the log file {}: {source}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the mount daemon: {0}")]
    Spawn(#[source] io::Error),
    #[error("{tail} (the mount daemon exited before the mount was ready, {status}; its log: {})", log.display())]
    DaemonDied { status: ExitStatus, log: PathBuf, tail: String },
    #[error("the mount was not ready after {after:?}; the daemon was stopped: {tail} (its log: {})", log.display())]
    NotReady { after: Duration, log: PathBuf, tail: String },
    #[error("cannot set up signal handling: {0}")]
    Signals(#[source] io::Error),
    #[error("serving the mount failed: {0}")]
    Session(#[source] io::Error),
    #[error("cannot read /proc/self/mountinfo: {0}")]
    MountInfo(#[source] io::Error),
    #[error("unmounting {} failed: {reason}", path.display())]
    Unmount { path: PathBuf, reason: String },
}

/// The absolute path of a mount point, without following a (possibly dead) mount at its end:
/// the parent is canonicalized, the last component kept.
pub fn absolute_mountpoint(path: &Path) -> Result<PathBuf, MountError> {
    let err = |source| MountError::MountPoint { path: path.to_owned(), source };
    let abs = std::path::absolute(path).map_err(err)?;
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => Ok(fs::canonicalize(parent).map_err(err)?.join(name)),
        // `/` itself.
        _ => Ok(abs),
    }
}

/// Checks that `path` can take a new mount: a directory, not an artfs mount already.
pub fn check_mountpoint(path: &Path) -> Result<(), MountError> {
    if is_artfs_mount(path)? {
        // Listing, not `stat`: the kernel answers `stat` of the root from its attribute cache
        // (long TTL) even after the daemon died, but must ask the daemon to open a directory.
        return match fs::metadata(path).and_then(|_| fs::read_dir(path).map(drop)) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                Err(MountError::Stale { path: path.to_owned() })
            }
            _ => Err(MountError::AlreadyMounted { path: path.to_owned() }),
        };
    }
    let meta = fs::metadata(path)
        .map_err(|source| MountError::MountPoint { path: path.to_owned(), source })?;
    if !meta.is_dir() {
        return Err(MountError::MountPoint {
            path: path.to_owned(),
            source: io::Error::from_raw_os_error(libc::ENOTDIR),
        });
    }
    Ok(())
}

/// Whether an artfs filesystem is mounted at `path` (absolute), per `/proc/self/mountinfo`.
pub fn is_artfs_mount(path: &Path) -> Result<bool, MountError> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(MountError::MountInfo)?;
    Ok(mountinfo_has(&info, path, FSTYPE))
}

/// Whether `mountinfo` (the text of `/proc/self/mountinfo`) lists a mount of `fstype` at `path`.
fn mountinfo_has(mountinfo: &str, path: &Path, fstype: &str) -> bool {
    let want = path.as_os_str().as_encoded_bytes();
    mountinfo.lines().any(|line| {
        // `id parent major:minor root mountpoint options [optional…] - fstype source super`
        let mut fields = line.split(' ');
        let Some(point) = fields.nth(4) else {
            return false;
        };
        let ty = fields.skip_while(|f| *f != "-").nth(1);
        ty == Some(fstype) && unescape_mountinfo(point) == want
    })
}

/// An artfs filesystem mounted on this machine.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActiveMount {
    pub mountpoint: PathBuf,
    /// What it mounts: the registry, or one artifact version and its registry.
    pub source: String,
}

/// Every artfs mount in `/proc/self/mountinfo`, in mount order.
pub fn active_mounts() -> Result<Vec<ActiveMount>, MountError> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(MountError::MountInfo)?;
    Ok(mounts_of_type(&info, FSTYPE))
}

fn mounts_of_type(mountinfo: &str, fstype: &str) -> Vec<ActiveMount> {
    use std::os::unix::ffi::OsStringExt;
    mountinfo
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let point = fields.nth(4)?;
            let mut after = fields.skip_while(|f| *f != "-").skip(1);
            (after.next()? == fstype).then_some(())?;
            let source = String::from_utf8_lossy(&unescape_mountinfo(after.next()?)).into_owned();
            let source = source
                .strip_prefix(FSTYPE_NAME)
                .map_or(source.clone(), |s| s.strip_prefix(':').unwrap_or(s).to_owned());
            let mountpoint = PathBuf::from(std::ffi::OsString::from_vec(unescape_mountinfo(point)));
            Some(ActiveMount { mountpoint, source })
        })
        .collect()
}

/// Undoes the octal escapes (`\040` for a space, …) of a mountinfo path.
fn unescape_mountinfo(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                // Three octal digits, at most 0o777; the kernel only escapes bytes.
                let v = u32::from(d[0] - b'0') * 64
                    + u32::from(d[1] - b'0') * 8
                    + u32::from(d[2] - b'0');
                out.push(v as u8);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// Starts this same command again with `--foreground`, detached, and waits until its mount at
/// `mountpoint` is ready. Returns the daemon's pid.
pub fn spawn_daemon(log: &Path, mountpoint: &Path, timeout: Duration) -> Result<u32, MountError> {
    let log_err = |source| MountError::Log { path: log.to_owned(), source };
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).map_err(log_err)?;
    }
    let out = OpenOptions::new().create(true).append(true).open(log).map_err(log_err)?;
    let start = out.metadata().map_err(log_err)?.len();
    let err_out = out.try_clone().map_err(log_err)?;
    let exe = std::env::current_exe().map_err(MountError::Spawn)?;
    // Called as `mount.fuse.artfs`, the daemon is the `artfs mount` that stands for.
    let given = crate::fstab::effective_args(std::env::args_os().collect());
    let mut args: Vec<OsString> = given.into_iter().skip(1).collect();
    // Right after the subcommand, so that it stays a flag even after a `--`.
    let at = args.iter().position(|a| a == "mount").map_or(args.len(), |i| i + 1);
    args.insert(at, "--foreground".into());
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err_out)
        // Its own process group: a Ctrl-C in the starting shell must not take the mount down.
        .process_group(0)
        .spawn()
        .map_err(MountError::Spawn)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(MountError::Spawn)? {
            return Err(MountError::DaemonDied {
                status,
                log: log.to_owned(),
                tail: log_tail(log, start),
            });
        }
        if is_artfs_mount(mountpoint)? {
            return Ok(child.id());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(MountError::NotReady {
                after: timeout,
                log: log.to_owned(),
                tail: log_tail(log, start),
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// What the daemon said last after byte `start` of `log`, as one line: its error if it reported
/// one (what the user needs), else its last line.
fn log_tail(log: &Path, start: u64) -> String {
    let mut text = String::new();
    let read = File::open(log).and_then(|mut f| {
        f.seek(SeekFrom::Start(start))?;
        f.read_to_string(&mut text)
    });
    if read.is_err() {
        return "its log is unreadable".into();
    }
    last_words(&text)
}

fn last_words(text: &str) -> String {
    let lines = || text.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines().filter_map(|l| l.strip_prefix("error: ")).next_back() {
        Some(error) => error.to_owned(),
        None => lines().next_back().unwrap_or("it wrote nothing").to_owned(),
    }
}

/// Mounts `fs` at `mountpoint` and serves it until it is unmounted or the process receives
/// SIGINT/SIGTERM (which stop its downloads and unmount it). `runtime` is the one whose handle `fs` holds.
pub fn serve(
    fs: ArtifactFs,
    mountpoint: &Path,
    source: &str,
    allow_other: bool,
    passthrough: bool,
    runtime: &Runtime,
) -> Result<(), MountError> {
    // Handlers first: a signal right after the mount appears must still unmount cleanly.
    let (mut term, mut int) = {
        let _entered = runtime.enter();
        (
            signal(SignalKind::terminate()).map_err(MountError::Signals)?,
            signal(SignalKind::interrupt()).map_err(MountError::Signals)?,
        )
    };
    let fetches = fs.clone();
    let mut mount = Mount::new(fs, mountpoint, source, allow_other, passthrough)
        .map_err(|source| MountError::Mount { path: mountpoint.to_owned(), source })?;
    let mut unmounter = mount.unmounter();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let session = std::thread::Builder::new()
        .name("artfs-session".into())
        .spawn(move || {
            let result = mount.run();
            let _ = done_tx.send(());
            result
        })
        .map_err(MountError::Spawn)?;
    tracing::info!(mountpoint = %mountpoint.display(), "mounted");
    let signalled = runtime.block_on(async {
        tokio::select! {
            _ = term.recv() => Some("SIGTERM"),
            _ = int.recv() => Some("SIGINT"),
            _ = done_rx => None,
        }
    });
    if let Some(name) = signalled {
        tracing::info!(mountpoint = %mountpoint.display(), "{name}: unmounting");
        // Opens waiting for downloads would keep the mount busy past the grace.
        fetches.stop_fetches();
        if let Err(e) = unmounter.unmount() {
            tracing::error!(mountpoint = %mountpoint.display(), "unmount failed: {e}");
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !session.is_finished() && Instant::now() < deadline {
            std::thread::sleep(POLL_INTERVAL);
        }
        if !session.is_finished() {
            // Files still open on a lazily detached mount: exiting closes /dev/fuse, which
            // ends the connection; their readers get ENOTCONN.
            tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}; exiting anyway");
            return Ok(());
        }
    }
    match session.join() {
        Ok(Ok(())) => {
            tracing::info!(mountpoint = %mountpoint.display(), "unmounted");
            Ok(())
        }
        Ok(Err(e)) => Err(MountError::Session(e)),
        Err(_panic) => {
            Err(MountError::Session(io::Error::other("the FUSE session thread panicked")))
        }
    }
}

/// Unmounts the artfs mount at `mountpoint` (absolute) with `fusermount3 -u` (`-z`: lazily, even
/// while files are open), falling back to `umount` where fusermount3 is not installed.
pub fn unmount(mountpoint: &Path, lazy: bool) -> Result<(), MountError> {
    if !is_artfs_mount(mountpoint)? {
        return Err(MountError::NotMounted { path: mountpoint.to_owned() });
    }
    let fail = |reason: String| MountError::Unmount { path: mountpoint.to_owned(), reason };
    let mut cmd = Command::new("fusermount3");
    cmd.arg("-u");
    if lazy {
        cmd.arg("-z");
    }
    let output = match cmd.arg("--").arg(mountpoint).output() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut cmd = Command::new("umount");
            if lazy {
                cmd.arg("-l");
            }
            cmd.arg(mountpoint).output()
        }
        other => other,
    }
    .map_err(|e| fail(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = match stderr.contains("busy") {
            true => "; files are open on it: close them, or use --lazy",
            false => "",
        };
        return Err(fail(format!("{}{hint}", stderr.trim())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_daemon_is_reported_by_its_error_in_one_line() {
        let log = "INFO starting\nerror: acme/p/ds has no version v7; versions: v0\n\n";
        assert_eq!(last_words(log), "acme/p/ds has no version v7; versions: v0");
        assert_eq!(last_words("a\nlast words \n"), "last words");
        assert_eq!(last_words(""), "it wrote nothing");
    }

    #[test]
    fn reads_mountinfo() {
        let info = "\
36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
90 24 0:55 / /tmp/a\\040b rw,nosuid,nodev,relatime shared:1 - fuse.artfs artfs ro,user_id=0
91 24 0:56 / /tmp/c rw - fuse.other x ro
";
        assert!(mountinfo_has(info, Path::new("/tmp/a b"), FSTYPE));
        assert!(!mountinfo_has(info, Path::new("/tmp/a"), FSTYPE));
        assert!(!mountinfo_has(info, Path::new("/tmp/c"), FSTYPE));
        assert!(mountinfo_has(info, Path::new("/mnt1"), "ext3"));
        assert_eq!(unescape_mountinfo("a\\134b\\011"), b"a\\b\t");
        assert_eq!(unescape_mountinfo("x\\9"), b"x\\9");
    }
}
