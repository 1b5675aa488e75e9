//! The API's connections: herald's own accept loop around hyper's HTTP/1 server.
//!
//! `axum::serve` accepts every connection and keeps it as long as the client likes, so
//! clients that connect and send nothing (or half a request) can hold every file
//! descriptor the process has, and feed fetches then fail too. Here:
//! - at most `max_connections` are served at once: the loop takes a slot before it
//!   accepts, so further clients wait in the kernel's listen backlog, where they hold
//!   none of herald's descriptors;
//! - a request's headers must arrive within `header_timeout` (of the accept for a
//!   connection's first request; of the first byte for a kept-alive connection's
//!   next one), a kept-alive connection may wait `idle_timeout` for its next request,
//!   and a response the client stops reading is abandoned after `idle_timeout`;
//! - accept errors such as EMFILE pause accepting, growing to a second, and are
//!   logged once when they start and once when they end.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::config::{ApiLimits, MAX_API_CONNECTIONS};

use super::error::ApiError;

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then
/// closes the listener, lets requests in flight finish and returns once every
/// connection has closed.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ApiLimits,
    shutdown: impl Future<Output = ()>,
) {
    let max_connections = limits.max_connections.clamp(1, MAX_API_CONNECTIONS);
    let slots = Arc::new(Semaphore::new(max_connections));
    let (closing, closing_seen) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut errors = AcceptErrors::default();
    loop {
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_closed) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                errors.recovered();
                tokio::spawn(connection(
                    stream,
                    router.clone(),
                    limits.clone(),
                    slot,
                    closing_seen.clone(),
                ));
            }
            Err(error) => {
                drop(slot);
                if let Some(pause) = errors.failed(&error) {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }
    drop(listener);
    closing.send_replace(true);
    // Every connection holds a slot until it ends: all slots free means all closed.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// Answers 503 when a handler takes longer than `request_timeout`, so that a slow
/// database holds no connection (and its slot) for longer than that.
pub(super) async fn time_limit(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_elapsed) => ApiError::unavailable(format!(
            "no answer within the request timeout ({})",
            humantime::format_duration(limit)
        ))
        .into_response(),
    }
}

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: ApiLimits,
    _slot: OwnedSemaphorePermit,
    mut closing: watch::Receiver<bool>,
) {
    let reads = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched {
        stream,
        reads: Arc::clone(&reads),
        idle_timeout: limits.idle_timeout,
        stalled: None,
    });
    let timer = HeadTimer {
        reads,
        first: AtomicBool::new(true),
        header_timeout: limits.header_timeout,
        idle_timeout: limits.idle_timeout,
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(timer)
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(io, TowerToHyperService::new(router));
    let mut conn = pin!(conn);
    let closed = async move {
        let _ = closing.wait_for(|closing| *closing).await;
    };
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = closed => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    // Per connection and caused by the client (a timeout, a reset): debug only, or
    // a crowd of slow clients would flood the log.
    if let Err(error) = ended {
        tracing::debug!(%error, "API connection closed");
    }
}

/// The connection's socket, counting reads for [`HeadTimer`] and abandoning a write
/// that makes no progress for `idle_timeout` (a client that stopped reading).
struct Watched {
    stream: TcpStream,
    reads: Arc<AtomicU64>,
    idle_timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Watched {
    fn watch_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let idle_timeout = self.idle_timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle_timeout)));
        ready!(stalled.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing for the API's idle_timeout",
        )))
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.reads.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, data);
        this.watch_write(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, data);
        this.watch_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_flush(cx);
        this.watch_write(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// hyper's HTTP/1 server asks its timer for one thing only: a deadline for the next
/// request's headers, each time it starts waiting for them, at `header_timeout` from
/// then. That is right for a connection's first request; for the next one on a
/// kept-alive connection the client has `idle_timeout` to start, and
/// `header_timeout` from its first byte to finish the headers.
///
/// Bytes of a next request that arrived in the same read as the previous one
/// (pipelining) are not seen as a start: such a request gets `idle_timeout`, which
/// still bounds it.
struct HeadTimer {
    reads: Arc<AtomicU64>,
    first: AtomicBool,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadWait {
            sleep: Box::pin(tokio::time::sleep(duration)),
            quiet: None,
            header_timeout: self.header_timeout,
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        if self.first.swap(false, Ordering::Relaxed) {
            return Box::pin(HeadWait {
                sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
                quiet: None,
                header_timeout: self.header_timeout,
            });
        }
        Box::pin(HeadWait {
            sleep: Box::pin(tokio::time::sleep(self.idle_timeout)),
            quiet: Some((Arc::clone(&self.reads), self.reads.load(Ordering::Relaxed))),
            header_timeout: self.header_timeout,
        })
    }
}

/// A deadline that, while `quiet` holds the read count it started with, moves to
/// `header_timeout` from now as soon as the count changes. hyper polls it each time
/// a read leaves the headers incomplete, so "now" is when the bytes came.
struct HeadWait {
    sleep: Pin<Box<tokio::time::Sleep>>,
    quiet: Option<(Arc<AtomicU64>, u64)>,
    header_timeout: Duration,
}

impl Future for HeadWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if let Some((reads, before)) = &this.quiet
            && reads.load(Ordering::Relaxed) != *before
        {
            this.quiet = None;
            let deadline = tokio::time::Instant::now() + this.header_timeout;
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadWait {}

/// Shortest pause after an accept error.
const FIRST_ACCEPT_PAUSE: Duration = Duration::from_millis(10);
/// Longest pause: EMFILE clears when other connections close, which a second's
/// wait does not delay noticeably.
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// Accept failures, grouped into episodes that are logged when they start and end.
#[derive(Debug, Default)]
struct AcceptErrors {
    episode: Option<Episode>,
}

#[derive(Debug)]
struct Episode {
    started: Instant,
    failures: u64,
    pause: Duration,
}

impl AcceptErrors {
    /// How long to wait before accepting again, if at all.
    fn failed(&mut self, error: &io::Error) -> Option<Duration> {
        if is_client_error(error) {
            tracing::debug!(%error, "API client went away before its connection was accepted");
            return None;
        }
        match &mut self.episode {
            Some(episode) => {
                episode.failures += 1;
                episode.pause = (episode.pause * 2).min(MAX_ACCEPT_PAUSE);
                Some(episode.pause)
            }
            None => {
                tracing::warn!(
                    %error,
                    "HTTP API cannot accept connections; pausing accepts until it can \
                     (feeds and alerts carry on)"
                );
                self.episode = Some(Episode {
                    started: Instant::now(),
                    failures: 1,
                    pause: FIRST_ACCEPT_PAUSE,
                });
                Some(FIRST_ACCEPT_PAUSE)
            }
        }
    }

    fn recovered(&mut self) {
        if let Some(episode) = self.episode.take() {
            tracing::info!(
                failures = episode.failures,
                after = ?episode.started.elapsed(),
                "HTTP API accepting connections again"
            );
        }
    }
}

/// Errors about one connection that the client abandoned: the next accept may well
/// succeed at once.
fn is_client_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::*;

    /// Bounds every wait in these tests: far longer than any timeout they configure.
    const PATIENCE: Duration = Duration::from_secs(20);
    const BIG: usize = 16 << 20;

    fn limits(header: u64, request: u64, idle: u64) -> ApiLimits {
        ApiLimits {
            max_connections: 4,
            header_timeout: Duration::from_millis(header),
            request_timeout: Duration::from_millis(request),
            idle_timeout: Duration::from_millis(idle),
        }
    }

    struct Server {
        address: std::net::SocketAddr,
        stop: Option<oneshot::Sender<()>>,
        served: JoinHandle<()>,
        /// Notified when `/slow` starts on a request.
        slow_started: Arc<tokio::sync::Notify>,
    }

    async fn start(limits: ApiLimits) -> Server {
        let slow_started = Arc::new(tokio::sync::Notify::new());
        let started = Arc::clone(&slow_started);
        let router = Router::new()
            .route("/hello", get(|| async { "hello" }))
            .route(
                "/slow",
                get(|| async move {
                    started.notify_one();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "slow"
                }),
            )
            .route("/big", get(|| async { vec![b'x'; BIG] }))
            .layer(axum::middleware::from_fn_with_state(
                limits.request_timeout,
                time_limit,
            ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let served = tokio::spawn(serve(listener, router, limits, async {
            let _ = stopped.await;
        }));
        Server {
            address,
            stop: Some(stop),
            served,
            slow_started,
        }
    }

    async fn connect(server: &Server) -> TcpStream {
        TcpStream::connect(server.address).await.unwrap()
    }

    async fn send(stream: &mut TcpStream, path: &str) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: herald\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
    }

    /// The next response's status line and body (Content-Length framed).
    async fn response(stream: &mut TcpStream) -> (String, String) {
        tokio::time::timeout(PATIENCE, async {
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8];
                let read = stream.read(&mut byte).await.unwrap();
                assert_eq!(
                    read,
                    1,
                    "closed mid-response: {:?}",
                    String::from_utf8_lossy(&head)
                );
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let mut body = vec![0u8; length];
            stream.read_exact(&mut body).await.unwrap();
            let status = head.lines().next().unwrap().to_owned();
            (status, String::from_utf8(body).unwrap())
        })
        .await
        .expect("no response")
    }

    /// Reads until the server closes the connection; returns how many bytes came.
    async fn until_closed(stream: &mut TcpStream) -> usize {
        tokio::time::timeout(PATIENCE, async {
            let mut total = 0;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return total,
                    Ok(read) => total += read,
                }
            }
        })
        .await
        .expect("the server kept the connection open")
    }

    #[tokio::test]
    async fn half_sent_headers_are_cut_off_after_header_timeout() {
        let server = start(limits(200, 5_000, 60_000)).await;
        let mut half = connect(&server).await;
        half.write_all(b"GET /hello HTTP/1.1\r\nHost: her")
            .await
            .unwrap();
        assert_eq!(
            until_closed(&mut half).await,
            0,
            "answered a half-sent request"
        );

        let mut silent = connect(&server).await;
        assert_eq!(until_closed(&mut silent).await, 0);

        let mut whole = connect(&server).await;
        send(&mut whole, "/hello").await;
        assert_eq!(
            response(&mut whole).await,
            ("HTTP/1.1 200 OK".to_owned(), "hello".to_owned())
        );
    }

    #[tokio::test]
    async fn a_kept_alive_connection_waits_idle_timeout_for_its_next_request() {
        let server = start(limits(200, 5_000, 1_500)).await;
        let mut stream = connect(&server).await;
        for _ in 0..2 {
            send(&mut stream, "/hello").await;
            assert_eq!(response(&mut stream).await.1, "hello");
            // Longer than header_timeout, shorter than idle_timeout: still open.
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        send(&mut stream, "/hello").await;
        assert_eq!(response(&mut stream).await.1, "hello");
        assert_eq!(until_closed(&mut stream).await, 0);
    }

    #[tokio::test]
    async fn a_kept_alive_connection_has_header_timeout_from_its_next_requests_first_byte() {
        let server = start(limits(200, 5_000, 60_000)).await;
        let mut stream = connect(&server).await;
        send(&mut stream, "/hello").await;
        assert_eq!(response(&mut stream).await.1, "hello");
        stream.write_all(b"GET /hel").await.unwrap();
        // Within PATIENCE, far less than the 60 s idle_timeout.
        assert_eq!(until_closed(&mut stream).await, 0);
    }

    #[tokio::test]
    async fn a_slow_handler_is_answered_503_at_request_timeout() {
        let server = start(limits(1_000, 100, 60_000)).await;
        let mut stream = connect(&server).await;
        send(&mut stream, "/slow").await;
        let (status, body) = response(&mut stream).await;
        assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
        assert_eq!(
            body,
            r#"{"error":"no answer within the request timeout (100ms)"}"#
        );
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_loses_its_connection_and_slot() {
        let server = start(ApiLimits {
            max_connections: 1,
            ..limits(1_000, 5_000, 300)
        })
        .await;
        let mut stalled = connect(&server).await;
        send(&mut stalled, "/big").await;
        // The only slot is the stalled connection's: this one is answered once
        // idle_timeout has freed it.
        let mut next = connect(&server).await;
        send(&mut next, "/hello").await;
        assert_eq!(response(&mut next).await.1, "hello");
        assert!(until_closed(&mut stalled).await < BIG);
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_for_a_slot() {
        let server = start(ApiLimits {
            max_connections: 2,
            ..limits(500, 5_000, 60_000)
        })
        .await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut stream = connect(&server).await;
            stream.write_all(b"GET /hello HTTP/1.1\r\n").await.unwrap();
            held.push(stream);
        }
        let mut waiting = connect(&server).await;
        send(&mut waiting, "/hello").await;
        assert_eq!(response(&mut waiting).await.1, "hello");
        // Answered only because a held connection had been closed by then.
        let mut closed = 0;
        for stream in &mut held {
            let mut byte = [0u8];
            if matches!(stream.try_read(&mut byte), Ok(0) | Err(_)) {
                closed += 1;
            }
        }
        assert!(closed >= 1, "served a third connection while two were open");
    }

    #[tokio::test]
    async fn shutdown_finishes_requests_in_flight_and_closes_idle_connections() {
        let mut server = start(limits(10_000, 5_000, 60_000)).await;
        let mut idle = connect(&server).await;
        let mut busy = connect(&server).await;
        send(&mut busy, "/slow").await;
        server.slow_started.notified().await;
        server.stop.take().unwrap().send(()).unwrap();
        assert_eq!(response(&mut busy).await.1, "slow");
        assert_eq!(until_closed(&mut idle).await, 0);
        tokio::time::timeout(PATIENCE, server.served)
            .await
            .expect("serve did not return after shutdown")
            .unwrap();
        assert!(TcpStream::connect(server.address).await.is_err());
    }

    #[test]
    fn accept_errors_pause_longer_up_to_a_second_and_start_over_after_a_success() {
        let mut errors = AcceptErrors::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let pauses: Vec<_> = (0..10).filter_map(|_| errors.failed(&emfile)).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert!(
            pauses.windows(2).all(|pair| pair[0] <= pair[1]),
            "{pauses:?}"
        );
        assert_eq!(pauses[9], Duration::from_secs(1));
        assert_eq!(errors.episode.as_ref().map(|e| e.failures), Some(10));

        errors.recovered();
        assert!(errors.episode.is_none());
        assert_eq!(errors.failed(&emfile), Some(Duration::from_millis(10)));
    }

    #[test]
    fn a_client_that_gave_up_is_no_reason_to_pause() {
        let mut errors = AcceptErrors::default();
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(errors.failed(&aborted), None);
        assert!(errors.episode.is_none());
    }
}
