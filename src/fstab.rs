//! `mount.fuse.artfs`: the same binary under the name `mount -t fuse.artfs` and fstab call
//! (`mount.fuse.artfs SOURCE MOUNTPOINT [-o OPTIONS]`), turned into `artfs mount` arguments.
//! SOURCE is what `artfs mounts` shows: a registry URL, or `ARTIFACT@REGISTRY`.
//!
//! Options: the generic ones mount(8) and systemd pass along (`ro`, `nodev`, `_netdev`,
//! `x-systemd.*`, …) are dropped; `allow_other`, `uid=`, `gid=`, `file_mode=`, `dir_mode=`,
//! `nonempty` and any other `name[=value]` become `--name [value]` (`_` read as `-`), so every
//! `artfs mount` flag works in fstab; `cache_dir=`, `cache_size=` set the globals.

use std::ffi::OsString;

/// The names the helper is installed under.
const HELPER_NAMES: [&str; 2] = ["mount.fuse.artfs", "mount.artfs"];

/// Options of mount(8), fuse and systemd that mean nothing to artfs (it is always read-only,
/// nodev and nosuid).
const IGNORED: [&str; 16] = [
    "ro", "rw", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "auto", "noauto", "user",
    "nouser", "users", "defaults", "_netdev", "nofail",
];

/// The arguments to parse: `args` as given, or, when the binary was called as the mount helper,
/// the `artfs mount` command line it stands for.
pub fn effective_args(args: Vec<OsString>) -> Vec<OsString> {
    let called_as = args.first().and_then(|a| std::path::Path::new(a).file_name()?.to_str());
    if !called_as.is_some_and(|n| HELPER_NAMES.contains(&n)) {
        return args;
    }
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut rest = args.into_iter().skip(1);
    while let Some(a) = rest.next() {
        match a.to_str() {
            Some("-o") => options.extend(rest.next()),
            // mount(8)'s own flags: no mtab, sloppy, fake, verbose.
            Some("-n" | "-s" | "-f" | "-v") => {}
            _ => positional.push(a),
        }
    }
    helper_command(positional, &options)
}

fn helper_command(positional: Vec<OsString>, options: &[OsString]) -> Vec<OsString> {
    let mut global: Vec<OsString> = vec!["artfs".into()];
    let mut flags: Vec<OsString> = Vec::new();
    for opt in options.iter().flat_map(|o| o.to_str().unwrap_or_default().split(',')) {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        if name.is_empty() || IGNORED.contains(&name) || name.starts_with("x-") {
            continue;
        }
        let name = match name {
            "nonempty" => "allow-non-empty".to_owned(),
            "cache_dir" | "cache_size" | "registry" => {
                global.push(format!("--{}", name.replace('_', "-")).into());
                global.extend(value.map(OsString::from));
                continue;
            }
            other => other.replace('_', "-"),
        };
        flags.push(format!("--{name}").into());
        flags.extend(value.map(OsString::from));
    }
    let mut out = global;
    out.push("mount".into());
    out.extend(flags);
    let mut positional = positional.into_iter();
    if let (Some(source), Some(mountpoint)) = (positional.next(), positional.next()) {
        let source = source.to_string_lossy().into_owned();
        match source.rsplit_once('@').filter(|(a, _)| !a.contains("://")) {
            Some((artifact, registry)) => {
                out.splice(1..1, ["--registry".into(), registry.into()]);
                out.push("--".into());
                out.push(artifact.into());
            }
            None => {
                out.splice(1..1, ["--registry".into(), source.into()]);
                out.push("--".into());
            }
        }
        out.push(mountpoint);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Vec<String> {
        let args = args.iter().map(OsString::from).collect();
        effective_args(args).into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn fstab_lines_become_mount_commands() {
        assert_eq!(run(&["artfs", "ls"]), ["artfs", "ls"]);
        assert_eq!(
            run(&[
                "/sbin/mount.fuse.artfs",
                "s3://b/p",
                "/mnt/a",
                "-o",
                "ro,_netdev,allow_other,uid=7,x-systemd.automount,cache_dir=/c"
            ]),
            [
                "artfs",
                "--registry",
                "s3://b/p",
                "--cache-dir",
                "/c",
                "mount",
                "--allow-other",
                "--uid",
                "7",
                "--",
                "/mnt/a"
            ]
        );
        assert_eq!(
            run(&["mount.artfs", "acme/bikes/ds:v0@/srv/reg", "/mnt/ds", "-n", "-o", "nonempty"]),
            [
                "artfs",
                "--registry",
                "/srv/reg",
                "mount",
                "--allow-non-empty",
                "--",
                "acme/bikes/ds:v0",
                "/mnt/ds"
            ]
        );
    }
}
