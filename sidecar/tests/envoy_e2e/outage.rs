//! DynamoDB stopped for real under the running sidecar, in both modes, and started
//! again.

use crate::e2e::dynamodb::create_and_seed;
use crate::e2e::requests::{Reply, bearer, client, echo, seen};
use crate::e2e::{self, Fixture, Mode, OwnDynamoDb, Setup};
use std::time::Duration;
use stepup_core::clock;

/// DynamoDB goes away for real. Privileged requests whose completion is not cached fail
/// closed with an explicit 403 (not a 5xx that Envoy would count as an error, and let
/// through under `failure_mode_allow`); a completion the check cached is honoured for
/// the cache's age (docs/decisions.md, "Caching"); unprivileged requests go on from the
/// last good policy index, also after failed refreshes; the step-up API says 503. Then
/// DynamoDB is back (empty, on the same port): the sidecar recovers by itself and the
/// whole step-up works again without a restart.
///
/// Both modes share one DynamoDB Local of the scenario's own: its JVM starting and
/// stopping is most of the run time of `envoy_e2e`. Each step runs for the gRPC fixture, then
/// for the HTTP one; every assertion names its mode.
pub async fn dynamodb_outage_fails_closed_with_403_and_a_restart_recovers() {
    const SCENARIO: &str = "dynamodb_outage";
    if e2e::endpoints().is_none() {
        return;
    }
    let ddb = OwnDynamoDb::new(&format!("{SCENARIO}-{}", std::process::id()));
    ddb.start().await;
    let mut fixtures = Vec::new();
    for mode in [Mode::Grpc, Mode::Http] {
        let setup = Setup::new(mode, SCENARIO).on_dynamodb(&ddb.endpoint());
        fixtures.push(setup.start().await.expect("components checked above"));
    }
    for fx in &fixtures {
        before(fx).await;
    }
    ddb.stop().await;
    for fx in &fixtures {
        during(fx).await;
    }
    ddb.start().await;
    for fx in &fixtures {
        create_and_seed(&fx.ddb, &fx.names).await;
    }
    for fx in &fixtures {
        after_restart(fx).await;
    }
    for fx in fixtures {
        fx.finish().await;
    }
}

/// Token `a` completes a step-up, which the check then caches; token `c` gets a pending
/// session.
async fn before(fx: &Fixture) {
    let (a, c) = (fx.user.token(0), fx.user.token(2));
    fx.step_up(&a).await;
    fx.transfer_allowed(&a).await;
    assert_eq!(fx.initiate(&c).await.status, 200, "{}", fx.mode.name());
}

/// DynamoDB is down.
async fn during(fx: &Fixture) {
    let m = fx.mode.name();
    let (a, c) = (fx.user.token(0), fx.user.token(2));
    let r = Reply::read(fx.transfer(&c).await).await;
    assert_eq!(r.status, 403, "{m}: {r:?}");
    assert_eq!(r.body["code"], "SESSION_UNAVAILABLE", "{m}");
    let e = fx.transfer_allowed(&a).await;
    assert_eq!(
        seen(&e, "x-stepup-status"),
        ["complete"],
        "{m}: cached: {e}"
    );
    let policies = fx.parts.engine.policies();
    let refreshed = policies
        .refresh(fx.parts.settings.as_ref(), clock::now())
        .await;
    assert!(refreshed.is_err(), "{m}: the setting table is unreadable");
    assert!(policies.is_loaded(), "{m}: the last good index is kept");
    let e = echo(
        client()
            .get(fx.envoy.url("/info"))
            .header("authorization", bearer(&c))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen(&e, "x-stepup-status"), ["not_required"], "{m}");
    assert_eq!(fx.transfer(&c).await.status(), 403, "{m}");
    let status = fx.initiate(&c).await.status;
    assert_eq!(status, 503, "{m}: the step-up API says it is unavailable");
}

/// DynamoDB is back, empty, and the tables are made again by hand.
async fn after_restart(fx: &Fixture) {
    let m = fx.mode.name();
    let c = fx.user.token(2);
    // The setting table is read again through the sidecar's own client.
    let policies = fx.parts.engine.policies();
    let mut report = None;
    for _ in 0..20 {
        match policies
            .refresh(fx.parts.settings.as_ref(), clock::now())
            .await
        {
            Ok(r) => {
                report = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let report = report.unwrap_or_else(|| panic!("{m}: the policy refresh recovers"));
    assert_eq!(report.rules, 2, "{m}");
    let mut recovered = false;
    for _ in 0..50 {
        let status = fx.transfer(&c).await.status();
        if status == 401 {
            recovered = true;
            break;
        }
        assert_eq!(status, 403, "{m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "{m}: the session store is read again");
    fx.assert_transfer_challenged(&c).await;
    fx.step_up(&c).await;
    let e = fx.transfer_allowed(&c).await;
    assert_eq!(seen(&e, "x-stepup-status"), ["complete"], "{m}: {e}");
    assert_eq!(
        seen(&e, "x-stepup-user"),
        [fx.user.name.as_str()],
        "{m}: {e}"
    );
}
