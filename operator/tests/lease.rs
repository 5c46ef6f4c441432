//! Leader election (`stepup_operator::leader`) against the mock Kubernetes API server
//! (`common::apiserver`): creating the Lease, leaving a live one alone, taking an expired
//! one over guarded by its resource version.

use crate::common;

use common::apiserver::{next, reply};
use http::{Request, Response, StatusCode};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::client::Body;
use kube::{Api, Client};
use serde_json::{Value, json};
use std::time::Duration;
use stepup_core::clock::UnixSeconds;
use stepup_operator::controller;
use stepup_operator::leader::{self, LeaseSettings};
use tokio::time::timeout;

const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/stepup/leases";

fn lease_settings() -> LeaseSettings {
    LeaseSettings::new("stepup-operator".into(), "stepup".into(), "pod-a".into())
}

fn lease(holder: &str, renewed: UnixSeconds, version: &str) -> Lease {
    let mut l = Lease::default();
    l.metadata.name = Some("stepup-operator".into());
    l.metadata.namespace = Some("stepup".into());
    l.metadata.resource_version = Some(version.into());
    l.spec = Some(LeaseSpec {
        holder_identity: Some(holder.into()),
        renew_time: Some(MicroTime(controller::time_of(renewed).0)),
        lease_duration_seconds: Some(15),
        lease_transitions: Some(2),
        ..LeaseSpec::default()
    });
    l
}

#[tokio::test]
async fn the_first_replica_creates_the_lease_and_leads() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api: Api<Lease> = Api::namespaced(Client::new(service, "default"), "stepup");
    let server = tokio::spawn(async move {
        let (req, send) = next(&mut handle).await;
        assert_eq!(req.method(), http::Method::GET);
        assert_eq!(req.uri().path(), format!("{LEASES}/stepup-operator"));
        send.send_response(reply(
            StatusCode::NOT_FOUND,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": "not found"}),
        ));
        let (req, send) = next(&mut handle).await;
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().path(), LEASES);
        let body: Value =
            serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
        assert_eq!(body["spec"]["holderIdentity"], "pod-a");
        assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
        send.send_response(reply(StatusCode::CREATED, &body));
    });
    assert!(
        leader::try_acquire_or_renew(&api, &lease_settings(), NOW)
            .await
            .unwrap()
    );
    server.await.unwrap();
}

#[tokio::test]
async fn a_live_lease_of_another_replica_is_left_alone() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api: Api<Lease> = Api::namespaced(Client::new(service, "default"), "stepup");
    let server = tokio::spawn(async move {
        let (req, send) = next(&mut handle).await;
        assert_eq!(req.method(), http::Method::GET);
        send.send_response(reply(StatusCode::OK, &lease("pod-b", NOW.minus(3), "7")));
        // No write follows.
        assert!(
            timeout(Duration::from_millis(200), handle.next_request())
                .await
                .is_err()
        );
    });
    assert!(
        !leader::try_acquire_or_renew(&api, &lease_settings(), NOW)
            .await
            .unwrap()
    );
    server.await.unwrap();
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_guarded_by_its_resource_version() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api: Api<Lease> = Api::namespaced(Client::new(service, "default"), "stepup");
    let server = tokio::spawn(async move {
        let (_, send) = next(&mut handle).await;
        send.send_response(reply(StatusCode::OK, &lease("pod-b", NOW.minus(60), "7")));
        let (req, send) = next(&mut handle).await;
        assert_eq!(req.method(), http::Method::PUT);
        assert_eq!(req.uri().path(), format!("{LEASES}/stepup-operator"));
        let body: Value =
            serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
        assert_eq!(body["metadata"]["resourceVersion"], "7");
        assert_eq!(body["spec"]["holderIdentity"], "pod-a");
        assert_eq!(body["spec"]["leaseTransitions"], 3);
        send.send_response(reply(StatusCode::OK, &body));
        // A second candidate raced us on the next round: 409, so we follow.
        let (_, send) = next(&mut handle).await;
        send.send_response(reply(StatusCode::OK, &lease("pod-c", NOW.minus(60), "8")));
        let (_, send) = next(&mut handle).await;
        send.send_response(reply(
            StatusCode::CONFLICT,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "reason": "Conflict", "code": 409, "message": "the object has been modified"}),
        ));
    });
    let settings = lease_settings();
    assert!(
        leader::try_acquire_or_renew(&api, &settings, NOW)
            .await
            .unwrap()
    );
    assert!(
        !leader::try_acquire_or_renew(&api, &settings, NOW)
            .await
            .unwrap()
    );
    server.await.unwrap();
}
