//! `zt-rls`: a test rate-limit service. It answers Envoy's
//! `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` with Limitador's library, its
//! counters in memory or in Redis, so that the rate-limit filter can be tested through real Envoy,
//! and two Envoy processes can share one limit.
//!
//! - [`RlsServer`]: the service in-process, on 127.0.0.1 and a free port.
//! - [`RedisServer`]: a throwaway `redis-server` on a free loopback port.
//! - [`RlsClient`]: a gRPC client of the service, for tests.
//! - [`parse_limits`]: Limitador's limits file, as limitador-server reads it.
//!
//! The mapping from descriptors to Limitador (see `service.rs` and README.md): `domain` is the
//! namespace, and a limit reads the request's descriptors as `descriptors[i]['key']`.
//!
//! Test tooling only: nothing here is shipped in a filter.

mod error;
mod grpc;
mod limits;
pub mod proto;
mod redis_client;
mod redis_counters;
mod redis_server;
mod server;
mod service;

pub use error::Error;
pub use grpc::{RlsClient, SERVICE_NAME, SHOULD_RATE_LIMIT_PATH};
pub use limits::parse_limits;
pub use redis_server::RedisServer;
pub use server::RlsServer;

/// For the binary (`src/main.rs`): load limits, build the storage, serve until `shutdown`.
#[doc(hidden)]
pub mod cli {
    pub use crate::redis_counters::redact;
    pub use crate::server::runtime;

    use std::future::Future;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use crate::Error;

    /// Binds `listen`, calls `on_listening` with the bound address once the storage is ready, then
    /// serves until `shutdown` completes.
    pub async fn run(
        limits_yaml: &str,
        redis_url: Option<&str>,
        listen: SocketAddr,
        on_listening: impl FnOnce(SocketAddr),
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let limits = crate::parse_limits(limits_yaml)?;
        let limiter = crate::server::build_limiter(limits, redis_url).await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Bind { address: listen.to_string(), source })?;
        let bound = listener.local_addr().map_err(|source| Error::Bind { address: listen.to_string(), source })?;
        on_listening(bound);
        crate::server::serve(Arc::new(limiter), listener, shutdown, crate::server::DRAIN_TIMEOUT).await
    }
}
