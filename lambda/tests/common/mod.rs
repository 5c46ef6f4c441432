//! Shared by the handler, emulator and template tests: the fixtures, the test policy and
//! tokens, the CI rule for missing components, the workspace root.

#![allow(dead_code)]

use serde_json::Value;
use stepup_core::clock::UnixSeconds;
use stepup_core::item::{Attr, Item};
use stepup_core::session::{Factor, Session, SessionLimits};
use stepup_core::testkit::{TEST_CLIENT_ID, TestIssuer};

pub const REST_SEED_TRANSFER: &[u8] = include_bytes!("../fixtures/rest-seed-transfer.json");
pub const REST_INFO: &[u8] = include_bytes!("../fixtures/rest-request-info.json");
pub const REST_ADMIN: &[u8] = include_bytes!("../fixtures/rest-request-admin.json");
pub const REST_NO_AUTHORIZATION: &[u8] =
    include_bytes!("../fixtures/rest-request-no-authorization.json");
pub const HTTP_V2_TRANSFER: &[u8] = include_bytes!("../fixtures/http-v2-transfer.json");
pub const HTTP_V2_INFO: &[u8] = include_bytes!("../fixtures/http-v2-info.json");
pub const MALFORMED: &[u8] = include_bytes!("../fixtures/malformed.json");

#[allow(unused_imports)]
pub use stepup_core::testkit::components::in_ci;

/// Serves the test issuer's JWKS at `/jwks.json` on a free loopback port.
pub async fn jwks_server() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(|| async {
            (
                [("content-type", "application/json")],
                stepup_core::testkit::TEST_JWKS,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A fixture with `{{TOKEN}}` replaced by `token`.
pub fn event(fixture: &[u8], token: &str) -> Value {
    let text = std::str::from_utf8(fixture)
        .unwrap()
        .replace("{{TOKEN}}", token);
    serde_json::from_str(&text).unwrap()
}

/// The setting-table items of the sample API: `/info` open, `/transfer` needs a step-up
/// (the seed's hand-made item shape), `/admin/...` denied.
pub fn policy_items() -> Vec<Item> {
    let item = |pairs: &[(&str, Attr)]| -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    vec![
        item(&[
            ("id", Attr::s("/info")),
            ("stepUpState", Attr::s("STEP_UP_NOT_REQUIRED")),
        ]),
        item(&[
            ("id", Attr::s("/transfer")),
            ("stepUpState", Attr::s("STEP_UP_REQUIRED")),
        ]),
        item(&[
            ("id", Attr::s("/admin")),
            ("path", Attr::s("/admin")),
            ("match", Attr::s("PREFIX")),
            ("stepUpState", Attr::s("STEP_UP_DENY")),
        ]),
    ]
}

/// The session-table item of a step-up completed (TOTP) for the token with this `jti`.
pub fn completed_session(jti: &str, user: &str, now: UnixSeconds) -> Item {
    Session::initiate(
        jti,
        user,
        TEST_CLIENT_ID,
        now.plus(3600),
        now.minus(10),
        &SessionLimits::default(),
    )
    .after_success(Factor::SoftwareToken, now.minus(5))
    .to_item()
}

/// A token for `user` with this `jti`.
pub fn token(issuer: &TestIssuer, user: &str, jti: &str, now: UnixSeconds) -> String {
    issuer.token(user, jti, now)
}
