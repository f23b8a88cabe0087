//! Whole downloads from hostile servers: a body that never ends is cut at the entry's recorded
//! size, a body that drips fails within the stall bound, and neither leaves anything cached.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{FetchError, Fetcher};
use crate::cache::BlobCache;
use crate::manifest::Entry;
use crate::registry::testing::TempRegistry;
use crate::source::BlobSource;
use crate::source::registry::RegistryBlobs;
use crate::store::cloud::{CloudConfig, Clouds};
use crate::store::guard::RefAccess;

/// How a hostile server sends its body after the headers.
#[derive(Clone, Copy)]
enum Body {
    /// 64 KiB pieces for ever, no length.
    Endless,
    /// One byte every 100 ms for ever.
    Drip,
}

/// An HTTP server on 127.0.0.1:0 answering every GET with 200 and `body`; the bytes it managed to
/// send are counted.
fn hostile(body: Body) -> (String, Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || {
                let _ = conn.read(&mut [0u8; 4096]);
                let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
                if conn.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let piece = vec![b'x'; 64 << 10];
                loop {
                    let chunk: &[u8] = match body {
                        Body::Endless => &piece,
                        Body::Drip => {
                            std::thread::sleep(Duration::from_millis(100));
                            &piece[..1]
                        }
                    };
                    if conn.write_all(chunk).is_err() {
                        return;
                    }
                    counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (format!("http://{addr}"), sent)
}

/// A reference logged without checksum (digest = URI), recorded as `size` bytes.
fn reference(uri: String, size: u64) -> Entry {
    Entry { digest: uri.clone(), reference: Some(uri), size: Some(size), ..Entry::default() }
}

#[test]
fn endless_and_dripping_bodies_fail_within_the_size_and_the_stall_bound() {
    let t = TempRegistry::default();
    let cache = BlobCache::open(&t.dir.path().join("cache"), 1 << 30).unwrap();
    let refs = RefAccess::new(&[], true).unwrap();
    let clouds = Clouds::new(CloudConfig { refs, ..CloudConfig::default() });
    let stall = Duration::from_millis(800);
    let fetcher = Fetcher::new(cache.clone(), t.runtime.handle().clone())
        .with_clouds(clouds)
        .with_stall_timeout(stall);
    let store = t.registry.store().clone();
    let blobs: Arc<dyn BlobSource> = Arc::new(RegistryBlobs::new(store));

    let (url, sent) = hostile(Body::Endless);
    let entry = reference(format!("{url}/endless.bin"), 100_000);
    let err = fetcher.cached(&blobs, "acme/p/ds:v0", "endless.bin", &entry).unwrap_err();
    assert!(matches!(err, FetchError::Cache { .. }), "{err:?}");
    let line = crate::report::error_line(&err);
    assert!(line.contains("more than the 100000 bytes"), "{line}");
    assert_eq!(cache.stats().unwrap().entries, 0, "nothing of an endless body is cached");
    // The server got ahead by what sockets buffer, not by the endless rest.
    let ahead = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(ahead < 64 << 20, "read {ahead} bytes of an endless body");

    let (url, _) = hostile(Body::Drip);
    let entry = reference(format!("{url}/drip.bin"), 100_000);
    let started = Instant::now();
    let err = fetcher.cached(&blobs, "acme/p/ds:v0", "drip.bin", &entry).unwrap_err();
    let took = started.elapsed();
    let line = crate::report::error_line(&err);
    assert!(line.contains("too slow"), "{line}");
    assert!(took >= stall && took < stall * 5, "a drip failed after {took:?}");
    assert_eq!(cache.stats().unwrap().entries, 0, "nothing of a dripping body is cached");
}
