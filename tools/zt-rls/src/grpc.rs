//! The gRPC plumbing of `envoy.service.ratelimit.v3.RateLimitService`, written by hand (what
//! tonic-build would generate for one unary method): a tower service routing the one path to
//! [`RateLimiter::should_rate_limit`], and a client for tests.
//!
//! It knows the method's path and the codec, nothing of Limitador.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use crate::Error;
use crate::proto::{RateLimitRequest, RateLimitResponse};
use crate::service::RateLimiter;

/// The service's name: the proto package, a dot, and the service (what Envoy puts in the path).
pub const SERVICE_NAME: &str = "envoy.service.ratelimit.v3.RateLimitService";
/// The one method's HTTP/2 path, as Envoy's `envoy_grpc`/`dispatch_grpc_call` sends it.
pub const SHOULD_RATE_LIMIT_PATH: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The service as tonic's server takes it: any other path answers UNIMPLEMENTED.
#[derive(Clone)]
pub(crate) struct RateLimitServiceServer {
    limiter: Arc<RateLimiter>,
}

impl RateLimitServiceServer {
    pub(crate) fn new(limiter: Arc<RateLimiter>) -> Self {
        Self { limiter }
    }
}

impl tonic::server::NamedService for RateLimitServiceServer {
    const NAME: &'static str = SERVICE_NAME;
}

impl tower_service::Service<http::Request<Body>> for RateLimitServiceServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != SHOULD_RATE_LIMIT_PATH {
            let status = Status::unimplemented(format!("zt-rls serves only {SHOULD_RATE_LIMIT_PATH}"));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let method = ShouldRateLimit(Arc::clone(&self.limiter));
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<RateLimitResponse, RateLimitRequest>::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

struct ShouldRateLimit(Arc<RateLimiter>);

impl tonic::server::UnaryService<RateLimitRequest> for ShouldRateLimit {
    type Response = RateLimitResponse;
    type Future = BoxFuture<Result<Response<RateLimitResponse>, Status>>;

    fn call(&mut self, request: Request<RateLimitRequest>) -> Self::Future {
        let limiter = Arc::clone(&self.0);
        Box::pin(async move { limiter.should_rate_limit(request.into_inner()).await.map(Response::new) })
    }
}

/// A client of `ShouldRateLimit`, for tests (Envoy is the real client).
#[derive(Clone, Debug)]
pub struct RlsClient {
    inner: tonic::client::Grpc<Channel>,
}

impl RlsClient {
    /// Connects to `http://ADDRESS` (plaintext HTTP/2), waiting at most 5 s.
    pub async fn connect(address: std::net::SocketAddr) -> Result<Self, Error> {
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| Error::Client(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10));
        let channel = endpoint.connect().await.map_err(|e| Error::Client(format!("connect to {address}: {e}")))?;
        Ok(Self { inner: tonic::client::Grpc::new(channel) })
    }

    /// One `ShouldRateLimit` call; a gRPC error status comes back as `Err`.
    pub async fn should_rate_limit(&mut self, request: RateLimitRequest) -> Result<RateLimitResponse, Status> {
        self.inner.ready().await.map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
        let path = PathAndQuery::from_static(SHOULD_RATE_LIMIT_PATH);
        let codec = ProstCodec::<RateLimitRequest, RateLimitResponse>::default();
        let response = self.inner.unary(Request::new(request), path, codec).await?;
        Ok(response.into_inner())
    }
}
