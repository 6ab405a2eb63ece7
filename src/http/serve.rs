//! Serving the router on a socket, with hyper's own connection settings.
//!
//! `axum::serve` gives hyper no timer, so a client that trickled its request headers held
//! its socket (and graceful shutdown) for as long as it liked. Here every connection has a
//! header-read deadline, which also ends idle keep-alive connections; connections beyond
//! a cap wait in the kernel's backlog; and shutdown waits for in-flight requests only (for
//! a bounded time), closing at once every connection that has no request in flight, however
//! little of a next request it has sent.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// How connections are treated.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// How long a client may take to send a request's headers, counted from when its
    /// connection opened or its previous response went out; so also how long an idle
    /// keep-alive connection stays open.
    pub header_timeout: Duration,
    /// Most connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests before it closes what is left.
    pub shutdown_grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets
/// in-flight requests finish (at most `shutdown_grace`) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let builder = connection_builder(options.header_timeout);
    let graceful = GracefulShutdown::new();
    let (stopping, stop_seen) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut shutdown => break,
        };
        let Some((stream, remote)) = accepted else {
            continue;
        };
        // Small GraphQL answers should not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let busy = Arc::new(AtomicUsize::new(0));
        let service = counted_service(router.clone(), remote, busy.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = Box::pin(graceful.watch(connection));
        let stop_seen = stop_seen.clone();
        tokio::spawn(async move {
            drive(connection, remote, stop_seen, &busy).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!("shutdown: closing connections still open after the grace period");
        }
    }
}

/// The next connection; `None` (after a short pause, instead of spinning) when accepting
/// failed, as when the process is out of file descriptors.
async fn accept(listener: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok(accepted) => Some(accepted),
        Err(error) => {
            tracing::warn!(%error, "accepting a connection failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// Serves one connection to its end, or, once shutdown began and nothing of it is in
/// flight, gives it a moment to flush and drops it.
async fn drive<E: std::fmt::Display>(
    mut connection: Pin<Box<impl Future<Output = Result<(), E>>>>,
    remote: SocketAddr,
    stop_seen: watch::Receiver<bool>,
    busy: &AtomicUsize,
) {
    tokio::select! {
        result = &mut connection => {
            if let Err(error) = result {
                tracing::debug!(%error, remote = %remote, "connection ended with an error");
            }
        }
        () = idle_after_stop(stop_seen, busy) => {
            // Keep-alive is off by now: a connection that just sent its last response
            // flushes it and closes by itself; a silent one is dropped.
            let _ = tokio::time::timeout(FLUSH_GRACE, connection).await;
        }
    }
}

/// hyper's settings for every connection: HTTP/1 with a header deadline, HTTP/2 with pings
/// (it has no header deadline; pings find peers that stopped answering).
fn connection_builder(header_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(header_timeout)
        .keep_alive_timeout(header_timeout);
    builder
}

/// The router as one connection's service: each request carries the peer's address and
/// counts in `busy` until hyper has taken its whole response body.
fn counted_service(
    router: Router,
    remote: std::net::SocketAddr,
    busy: Arc<AtomicUsize>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        let guard = InFlight::enter(busy.clone());
        let response = router.clone().oneshot(request);
        async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(Tracked {
                    inner: body,
                    _guard: guard,
                })
            }))
        }
    })
}

/// How long a connection with nothing in flight may take to flush and close at shutdown.
const FLUSH_GRACE: Duration = Duration::from_millis(500);

/// Resolves once shutdown has begun and the connection has no request in flight.
async fn idle_after_stop(mut stop_seen: watch::Receiver<bool>, busy: &AtomicUsize) {
    // An error means the server is gone: as good as a stop.
    let _ = stop_seen.wait_for(|stopping| *stopping).await;
    while busy.load(Ordering::Acquire) > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Counts a request as in flight from its head until its response body is dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted until hyper has taken all of it.
struct Tracked {
    inner: Body,
    _guard: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
