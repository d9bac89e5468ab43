//! Serving: the gRPC server loop with a bounded graceful stop (used by the binary), and
//! [`RlsServer`], the same service in-process on its own thread and runtime (used by tests).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use limitador::limit::Limit;
use tokio::sync::oneshot;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::Error;
use crate::grpc::RateLimitServiceServer;
use crate::limits::parse_limits;
use crate::service::RateLimiter;

/// After the stop signal, how long open connections get to finish (Envoy keeps its HTTP/2
/// connection open; a GOAWAY makes it close once its calls are answered): the binary's, and the
/// shorter one of an in-process server, which tests stop often.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
const IN_PROCESS_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// How long [`RlsServer::start`] waits for the service (connecting to Redis included).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dropping an [`RlsServer`] waits for its thread (drain, then runtime shutdown).
const STOP_TIMEOUT: Duration = IN_PROCESS_DRAIN_TIMEOUT.saturating_add(Duration::from_secs(4));
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);
/// Worker threads of a runtime: the work is small, and CI has two cores.
const WORKER_THREADS: usize = 2;

/// The counter storage: in memory, or Redis at a `redis://HOST:PORT` URL.
pub(crate) async fn build_limiter(limits: Vec<Limit>, redis_url: Option<&str>) -> Result<RateLimiter, Error> {
    let namespaces: std::collections::BTreeSet<&str> = limits.iter().map(|l| l.namespace().as_ref()).collect();
    tracing::info!("{} limits in namespaces {namespaces:?}", limits.len());
    match redis_url {
        Some(url) => RateLimiter::redis(limits, url).await,
        None => RateLimiter::in_memory(limits),
    }
}

/// Serves `ShouldRateLimit` on `listener` until `shutdown` completes, then stops accepting and
/// gives open connections `drain` to finish.
pub(crate) async fn serve(
    limiter: Arc<RateLimiter>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> Result<(), Error> {
    let (stop, stopped) = oneshot::channel::<()>();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut serving = tokio::spawn(Server::builder().serve_with_incoming_shutdown(
        RateLimitServiceServer::new(limiter),
        incoming,
        async {
            let _ = stopped.await;
        },
    ));
    let outcome = tokio::select! {
        finished = &mut serving => Some(finished),
        () = shutdown => None,
    };
    let finished = match outcome {
        Some(finished) => finished,
        None => {
            let _ = stop.send(());
            match tokio::time::timeout(drain, &mut serving).await {
                Ok(finished) => finished,
                Err(_elapsed) => {
                    tracing::warn!("connections still open {} ms after the stop: closing them", drain.as_millis());
                    serving.abort();
                    return Ok(());
                }
            }
        }
    };
    match finished {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::Serve(e.to_string())),
        Err(join_error) => Err(Error::Serve(join_error.to_string())),
    }
}

/// A multi-threaded runtime for the service.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("zt-rls")
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// The rate-limit service running in this process, on 127.0.0.1 and a port of its own, on its own
/// thread and tokio runtime (so it works from sync and async tests alike). Dropping it stops the
/// service: no new connections, open ones get 1 s to close, and the drop waits at most 5 s.
///
/// A client on a current-thread runtime that is blocked in this drop cannot close its connection,
/// so the drop then takes the whole second: drop such clients first, or use a multi-thread runtime.
#[derive(Debug)]
pub struct RlsServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    exited: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl RlsServer {
    /// Starts the service with the limits in `limits_yaml` (Limitador's limits-file format) and
    /// counters in Redis at `redis_url`, or in memory when `None`. Returns once it accepts calls;
    /// fails when the limits are invalid or Redis does not answer (within 10 s in all).
    pub fn start(limits_yaml: &str, redis_url: Option<&str>) -> Result<Self, Error> {
        let limits = parse_limits(limits_yaml)?;
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|source| Error::Bind { address: "127.0.0.1:0".into(), source })?;
        let address = listener.local_addr().map_err(|source| Error::Bind { address: "127.0.0.1:0".into(), source })?;
        let redis_url = redis_url.map(str::to_owned);

        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), Error>>();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (exited_tx, exited) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("zt-rls-{}", address.port()))
            .spawn(move || {
                run_in_thread(limits, redis_url, listener, ready_tx, stop_rx);
                let _ = exited_tx.send(());
            })
            .map_err(Error::Runtime)?;

        let mut server = Self { address, stop: Some(stop), exited, thread: Some(thread) };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(server),
            Ok(Err(e)) => Err(e),
            Err(e) => {
                // Stop it in case it becomes ready later; Drop bounds the wait.
                drop(server.stop.take());
                Err(Error::NotReady { waited: START_TIMEOUT, detail: e.to_string() })
            }
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for RlsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.exited.recv_timeout(STOP_TIMEOUT) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
            // Leave the thread behind rather than hang the test; it ends with the process.
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!("zt-rls on {} did not stop within {} s", self.address, STOP_TIMEOUT.as_secs());
            }
        }
    }
}

fn run_in_thread(
    limits: Vec<Limit>,
    redis_url: Option<String>,
    listener: std::net::TcpListener,
    ready: mpsc::Sender<Result<(), Error>>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let started = async {
            let limiter = build_limiter(limits, redis_url.as_deref()).await?;
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|source| Error::Bind { address: "127.0.0.1:0".into(), source })?;
            Ok::<_, Error>((limiter, listener))
        };
        let (limiter, listener) = match started.await {
            Ok(started) => started,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        // The listener is bound already: connections made from now on queue until served.
        let _ = ready.send(Ok(()));
        let stopped = async {
            let _ = stop.await;
        };
        if let Err(e) = serve(Arc::new(limiter), listener, stopped, IN_PROCESS_DRAIN_TIMEOUT).await {
            tracing::error!("{e}");
        }
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
}
