use super::*;
use std::net::{Ipv4Addr, SocketAddrV4};

fn on_any_port() -> DemoArgs {
    DemoArgs::on(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)))
}

#[test]
fn embedded_policies_require_step_up_for_transfer_only() {
    // The test runs in sidecar/, where examples/policies does not exist: the embedded
    // copies are used.
    let (index, source) = load_policies(None).unwrap();
    assert!(source.contains("built into the binary"), "{source}");
    let transfer = index.lookup("POST", "localhost", "/transfer").unwrap();
    assert_eq!(transfer.state.as_str(), "STEP_UP_REQUIRED");
    let info = index.lookup("GET", "localhost", "/info").unwrap();
    assert_eq!(info.state.as_str(), "STEP_UP_NOT_REQUIRED");
}

#[test]
fn embedded_policies_protect_payment_approval_in_claims_mode_only() {
    let (index, _) = load_policies(None).unwrap();
    let approve = index
        .lookup("POST", "localhost", "/payments/42/approve")
        .unwrap();
    assert_eq!(approve.state.as_str(), "STEP_UP_REQUIRED");
    assert_eq!(approve.max_age, Some(300));
    assert_eq!(
        approve.acr_values,
        ["urn:cognito:loa:3", "urn:cognito:loa:4"]
    );
    assert!(approve.allows_claims_mode() && !approve.allows_session_mode());
    assert!(
        index
            .lookup("GET", "localhost", "/payments/42/approve")
            .is_none()
    );
}

#[test]
fn the_repository_policies_are_read_from_a_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies");
    let (index, _) = load_policies(Some(&dir)).unwrap();
    assert!(index.lookup("POST", "h", "/transfer").is_some());
    assert!(index.lookup("GET", "h", "/admin/x").is_some());
    assert!(index.lookup("POST", "h", "/payments/7/approve").is_some());
}

#[tokio::test]
async fn a_non_loopback_address_is_refused_unless_forced() {
    let mut args = on_any_port();
    args.listen = "0.0.0.0:0".parse().unwrap();
    let err = Demo::start(args).await.unwrap_err();
    assert!(format!("{err}").contains("local development only"), "{err}");
}

#[tokio::test]
async fn the_demo_serves_its_page_and_prints_a_password() {
    let demo = Demo::start(on_any_port()).await.unwrap();
    assert!(demo.url.starts_with("http://127.0.0.1:"));
    assert_eq!(demo.username, "demo");
    assert!(demo.password.len() >= 12);
    let text = banner(&demo);
    assert!(text.contains(&demo.password) && text.contains("NOT FOR PRODUCTION"));
    let page = reqwest::get(&demo.url).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("DEVELOPMENT DEMO"));
    let r = reqwest::get(format!("{}info", demo.url)).await.unwrap();
    assert_eq!(r.status(), 401);
    demo.stop().await.unwrap();
}
