//! The mock Kubernetes API server of the operator's tests (controller-rs's
//! `ApiServerVerifier` pattern): the real `kube::Client` talks to a `tower_test` mock pair,
//! and a test answers each request it expects, failing when one does not come in time.

use http::{Request, Response, StatusCode};
use kube::client::Body;
use std::time::Duration;
use tokio::time::timeout;

/// How long a test waits for the next expected call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The test's end of the mock API server.
pub type ApiHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// An answer with this status and JSON body.
pub fn reply(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// The next request the client makes; panics when none comes within [`CALL_TIMEOUT`].
pub async fn next(
    handle: &mut ApiHandle,
) -> (
    Request<Body>,
    tower_test::mock::SendResponse<Response<Body>>,
) {
    timeout(CALL_TIMEOUT, handle.next_request())
        .await
        .expect("expected an API call")
        .expect("client gone")
}
