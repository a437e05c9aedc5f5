//! The node's accept loop: plain HTTP or TLS on one listener, HTTP/1.1, until shutdown.
//!
//! Why not `axum::serve`: it builds hyper's connection without a timer, and without one
//! hyper's `header_read_timeout` silently does nothing, so a client trickling a request head
//! (slowloris) holds its connection for ever; it also has no TLS. `axum-server` has TLS and a
//! reloadable `RustlsConfig`, but a second server crate between us and hyper for what is one
//! loop here. This loop, on tokio-rustls and hyper-util (both already linked through
//! reqwest), gives every connection:
//!
//! - a deadline for the TLS handshake and for each request head (`header_read_timeout`),
//!   counted from the head's first byte (the first head: from the connection's start) and
//!   kept here, not by hyper, whose own `header_read_timeout` also cuts idle keep-alive
//!   connections after that time and so races the load balancers' reuse of them;
//! - a cap on the request head's size (hyper answers 431 past it; `hardening.rs` answers a
//!   JSON 431 well before, at `MAX_HEADER_BYTES`);
//! - an idle timeout between keep-alive requests, longer than the load balancers' own, so the
//!   node never closes a pooled connection the LB is about to reuse;
//! - on a TLS port, a plain-HTTP request gets a 400 saying "use https" (never a 200);
//! - graceful shutdown: stop accepting, let each connection finish its request in flight,
//!   close idle ones at once, and give up waiting after `drain_limit`.
//!
//! The router is the caller's (`server::app`); each request carries `ConnectInfo<SocketAddr>`
//! like under `axum::serve`, so extractors work the same.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use super::tls::ServerTls;

/// Connection-level limits. `Default` is what `fleetctl serve` uses unless the config says
/// otherwise.
#[derive(Debug, Clone, Copy)]
pub struct ListenOptions {
    /// A client gets this long for the TLS handshake, and for each request head once it
    /// started (the first one: from the connection's start).
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no traffic for this long is closed. Longer than nginx's
    /// upstream keepalive_timeout (60 s) and HAProxy's idle-connection purge, so the LB is
    /// always the side that closes a pooled connection.
    pub idle_timeout: Duration,
    /// hyper's read buffer: a request head larger than this is refused with 431 by hyper
    /// itself (no body). `hardening::MAX_HEADER_BYTES` answers JSON 431 below it.
    pub max_buf_size: usize,
    /// At shutdown, stop waiting for open connections after this long.
    pub drain_limit: Duration,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(75),
            max_buf_size: 256 * 1024,
            drain_limit: Duration::from_secs(30),
        }
    }
}

/// Serve `router` on `listener` (over TLS when `tls` is given) until `shutdown` completes,
/// then stop accepting and let open connections finish (at most `drain_limit`).
pub async fn serve(
    router: Router,
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
    opts: ListenOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (closing_tx, closing_rx) = watch::channel(false);
    // Every connection task holds a clone; when the last one is dropped, `recv` returns.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning, keep serving the
                    // connections we have.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            router: router.clone(),
            tls: tls.clone(),
            opts,
            peer,
            closing: closing_rx.clone(),
            _alive: alive_tx.clone(),
        };
        tokio::spawn(conn.run(stream));
    }
    drop(listener);
    let _ = closing_tx.send(true);
    drop(alive_tx);
    if tokio::time::timeout(opts.drain_limit, alive_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {}s after shutdown began; closing them",
            opts.drain_limit.as_secs()
        );
    }
    Ok(())
}

/// One accepted connection and what it needs.
struct Conn {
    router: Router,
    tls: Option<Arc<ServerTls>>,
    opts: ListenOptions,
    peer: SocketAddr,
    closing: watch::Receiver<bool>,
    /// Dropped when the connection ends; `serve` waits for all of them at shutdown.
    _alive: mpsc::Sender<()>,
}

impl Conn {
    async fn run(self, stream: TcpStream) {
        let Some(tls) = self.tls.clone() else {
            self.http(stream).await;
            return;
        };
        let deadline = self.opts.header_read_timeout;
        // A TLS ClientHello starts with record type 22 (handshake). Anything else is most
        // likely plain HTTP sent to the TLS port: tell that client what to do instead of
        // failing the handshake in silence.
        let mut first = [0u8; 1];
        match tokio::time::timeout(deadline, stream.peek(&mut first)).await {
            Ok(Ok(1)) if first[0] != 0x16 => {
                refuse_plain_http(stream, deadline).await;
                return;
            }
            Ok(Ok(1)) => {}
            // Closed, failed, or silent for the whole deadline.
            _ => return,
        }
        match tokio::time::timeout(deadline, tls.acceptor().accept(stream)).await {
            Ok(Ok(stream)) => self.http(stream).await,
            Ok(Err(e)) => {
                tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed")
            }
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn http<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let clock = Arc::new(ConnClock::new());
        let io = Tracked {
            inner: io,
            clock: clock.clone(),
        };
        let peer = self.peer;
        let router = self.router;
        let in_service = clock.clone();
        let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            // The head is complete: its deadline stops; reads until the answer is ready are
            // the body's (bounded by the request timeout, not by this one).
            let guard = InFlight::start(in_service.clone());
            let call = router.clone().oneshot(req);
            async move {
                let res = call.await;
                drop(guard);
                res
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        // hyper's own header_read_timeout also bounds the idle time between keep-alive
        // requests, which would close pooled LB connections after a few seconds and race
        // with their reuse (a POST answered 502). The head deadline is kept here instead.
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(self.opts.max_buf_size)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        tokio::pin!(conn);
        let mut closing = self.closing;
        let mut asked_to_close = *closing.borrow();
        if asked_to_close {
            conn.as_mut().graceful_shutdown();
        }
        let head_timeout = self.opts.header_read_timeout;
        let tick = (head_timeout / 10).clamp(Duration::from_millis(50), Duration::from_millis(500));
        loop {
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = closing.changed(), if !asked_to_close => {
                    asked_to_close = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = tokio::time::sleep(tick) => {
                    if clock.head_overdue(head_timeout) {
                        // A request head (or the first one) still incomplete: slowloris, or a
                        // client that connected and said nothing. Drop the connection.
                        tracing::debug!(peer = %peer, "request head not complete within header_read_timeout; closing");
                        return;
                    }
                    if !asked_to_close && clock.idle_for() >= self.opts.idle_timeout {
                        asked_to_close = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// What the connection's deadlines are measured from, updated by the I/O wrapper and the
/// service: times are ms since the connection started, `+1` so 0 can mean "none".
struct ConnClock {
    start: Instant,
    /// Last byte read or written.
    last_io: AtomicU64,
    /// When the request head now being read started (0: none in progress). The first head
    /// starts with the connection.
    head_since: AtomicU64,
    /// Requests handed to the router and not yet answered.
    in_flight: AtomicUsize,
}

impl ConnClock {
    fn new() -> ConnClock {
        ConnClock {
            start: Instant::now(),
            last_io: AtomicU64::new(1),
            head_since: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self
                .head_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn head_overdue(&self, limit: Duration) -> bool {
        let since = self.head_since.load(Ordering::Relaxed);
        since != 0 && self.now().saturating_sub(since) > limit.as_millis() as u64
    }

    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0
            || self.head_since.load(Ordering::Relaxed) != 0
        {
            return Duration::ZERO;
        }
        Duration::from_millis(
            self.now()
                .saturating_sub(self.last_io.load(Ordering::Relaxed)),
        )
    }
}

/// One request between its complete head and its answer.
struct InFlight(Arc<ConnClock>);

impl InFlight {
    fn start(clock: Arc<ConnClock>) -> InFlight {
        clock.in_flight.fetch_add(1, Ordering::Relaxed);
        clock.head_since.store(0, Ordering::Relaxed);
        InFlight(clock)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.wrote();
    }
}

/// Answer a plain-HTTP request on the TLS port with a 400 that names the fix, then close.
async fn refuse_plain_http(mut stream: TcpStream, deadline: Duration) {
    let body = r#"{"error":"this port speaks HTTPS: use https:// (plain HTTP is refused)"}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(deadline, async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// An I/O stream that tells its [`ConnClock`] when bytes move.
struct Tracked<I> {
    inner: I,
    clock: Arc<ConnClock>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.read();
        }
        res
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
