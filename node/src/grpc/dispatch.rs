//! Routing of client-port requests to the gRPC services by service name, counting each
//! call in `grpc_server_handled_total`.
//!
//! tonic's own routes are axum routes with a `{*rest}` parameter per service, and a
//! middleware for the count was one more boxed layer: together about 5% of a member's CPU
//! under a read load (`bench/profile.sh`). Here the HTTP endpoints and the gateway keep
//! their axum routes, and everything else falls back to [`GrpcServices`], which picks the
//! service from the path's first segment with no parameters to extract.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::response::Response;
use futures::future::BoxFuture;
use tonic::server::NamedService;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

use crate::metrics::metrics;

/// One service, its response body made axum's.
type Boxed = BoxCloneSyncService<Request, Response, Infallible>;

/// Every gRPC service of the client port, by name; a path naming none of them gets
/// [`crate::gateway::fallback`]'s answer (gRPC `Unimplemented`, or HTTP 404).
///
/// axum clones its fallback service for every request: the services are shared, so that a
/// clone is one reference count and not one boxed clone per service.
#[derive(Clone, Default)]
pub struct GrpcServices {
    services: std::sync::Arc<Vec<(&'static str, Boxed)>>,
}

impl GrpcServices {
    /// Adds `service` under its gRPC name.
    pub fn with<S, B>(mut self, service: S) -> Self
    where
        S: tower::Service<Request, Response = axum::http::Response<B>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let boxed = BoxCloneSyncService::new(service.map_response(|r| r.map(Body::new)));
        std::sync::Arc::make_mut(&mut self.services).push((S::NAME, boxed));
        self
    }
}

impl tower::Service<Request> for GrpcServices {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each service is polled when it is called (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let path = request.uri().path();
        let (name, method) = path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .unwrap_or(("", ""));
        let Some((name, service)) = self.services.iter().find(|(n, _)| *n == name) else {
            let headers = request.headers().clone();
            return Box::pin(async move { Ok(crate::gateway::fallback(headers).await) });
        };
        let counted =
            crate::gateway::is_grpc(request.headers()).then(|| (*name, method.to_owned()));
        let call = service.clone().oneshot(request);
        Box::pin(async move {
            let response = call.await?;
            if let Some((service, method)) = counted {
                count(service, &method, &response);
            }
            Ok(response)
        })
    }
}

/// Counts a call in `grpc_server_handled_total`. The code is the one in the response
/// headers (a call failing before any message) or OK; a stream is counted when its
/// response starts.
fn count(service: &str, method: &str, response: &Response) {
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    metrics()
        .grpc_handled
        .with_label_values(&[
            crate::http::grpc_type(service, method),
            service,
            method,
            crate::http::code_name(code),
        ])
        .inc();
}
