//! Accepting connections so that hostile clients cannot lock others out: a client that never
//! finishes its headers, or holds a connection idle, is cut after [`HEADER_READ_TIMEOUT`]; at
//! most a bounded number of connections are served at once (beyond it a new one is closed at
//! once, so the work in flight finishes); and the process's open-file limit is raised to its hard
//! limit first, so the bound, not `EMFILE`, decides (a refused `accept` would leave every client
//! waiting in the backlog).
//!
//! Plain HTTP and HTTPS share the same acceptor and the same hyper settings (axum-server).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum_server::accept::{Accept, NoDelayAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a client may take to send a request's headers, and how long a kept-alive connection
/// may wait idle for its next request (hyper's header timer runs from the moment it waits); as
/// nginx's `client_header_timeout`, well above what a live client needs.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Most connections served at once, if the open-file limit allows as many.
pub const MAX_CONNECTIONS: usize = 16_384;
/// File descriptors left for the registry, the cache and the log beside the connections.
const FDS_KEPT_BACK: u64 = 256;
/// How long in-flight requests may finish after a shutdown signal, over TLS (plain HTTP waits
/// for them as long as they take, as `axum::serve` did).
const TLS_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` (HTTPS when `tls` is given) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let open_files = raise_open_files_limit();
    let max = usize::try_from(open_files.saturating_sub(FDS_KEPT_BACK))
        .unwrap_or(MAX_CONNECTIONS)
        .clamp(1, MAX_CONNECTIONS);
    tracing::debug!("serving at most {max} connections (open-file limit {open_files})");
    let capped = Capped { inner: NoDelayAcceptor::new(), slots: Arc::new(Semaphore::new(max)) };

    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    let grace = tls.as_ref().map(|_| TLS_SHUTDOWN_GRACE);
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(grace);
    });
    let mut server = axum_server::from_tcp(listener.into_std()?)?
        .handle(handle)
        // Also bounds hyper's wait for the first bytes, which tell HTTP/1 from HTTP/2 untimed.
        .first_request_timeout(HEADER_READ_TIMEOUT);
    server.http_builder().http1().header_read_timeout(HEADER_READ_TIMEOUT);
    let app = app.into_make_service();
    match tls {
        None => server.acceptor(capped).serve(app).await,
        Some(tls) => server.acceptor(RustlsAcceptor::new(tls).acceptor(capped)).serve(app).await,
    }
}

/// Raises the soft open-file limit to the hard one and returns the limit in force.
fn raise_open_files_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => return hard,
            Err(e) => tracing::debug!("cannot raise the open-file limit to {hard}: {e}"),
        }
    }
    soft
}

/// An acceptor that holds one of a bounded number of slots for each connection's lifetime and
/// closes a connection that finds none free.
#[derive(Clone)]
struct Capped<A> {
    inner: A,
    slots: Arc<Semaphore>,
}

impl<A, S> Accept<TcpStream, S> for Capped<A>
where
    A: Accept<TcpStream, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Slotted<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!("too many connections: closing a new one");
            return Box::pin(std::future::ready(Err(io::Error::other("too many connections"))));
        };
        let accepted = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((Slotted { stream, _slot: slot }, service))
        })
    }
}

/// A connection's stream with the slot it holds, freed when the connection is dropped.
struct Slotted<T> {
    stream: T,
    _slot: OwnedSemaphorePermit,
}

impl<T: AsyncRead + Unpin> AsyncRead for Slotted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Slotted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
