//! Audit (report-only) rules through Envoy: a request an audited rule would challenge or
//! deny reaches the upstream marked `x-stepup-status: audit` with the outcome it would
//! have had, is written to the decision log and counted per rule; once the item says
//! `ENFORCE` (after one policy refresh) the same requests get 401 / 403.

use crate::e2e::Setup;
use crate::e2e::requests::{Reply, assert_step_up_challenge, bearer, client, echo, seen};
use serde_json::Value;
use stepup_core::item::{Attr, Item};
use stepup_core::testkit::item;

fn rules(run: &str, enforcement: &str) -> [Item; 2] {
    [
        item(&[
            ("id", Attr::s(format!("{run}-pay"))),
            ("path", Attr::s("/payments/transfer")),
            ("stepUpState", Attr::s("STEP_UP_REQUIRED")),
            ("enforcement", Attr::s(enforcement)),
            ("owner", Attr::s("shop/payments")),
        ]),
        item(&[
            ("id", Attr::s(format!("{run}-admin"))),
            ("path", Attr::s("/admin")),
            ("match", Attr::s("PREFIX")),
            ("stepUpState", Attr::s("STEP_UP_DENY")),
            ("enforcement", Attr::s(enforcement)),
            ("owner", Attr::s("shop/admin")),
        ]),
    ]
}

/// The value of the series `name{…}` whose labels include every one of `labels`.
fn series(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (set, value) = rest.rsplit_once("} ")?;
        labels
            .iter()
            .all(|(k, v)| set.split(',').any(|kv| kv == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().unwrap())
    })
}

pub async fn audited_rules_reach_the_upstream_logged_and_counted_until_enforced(setup: Setup) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let target = format!("file:{}", log.display());
    let Some(fx) = setup.with_args(["--decision-log", &target]).start().await else {
        return;
    };
    for rule in rules(&fx.run, "AUDIT") {
        fx.put_rule(rule).await;
    }
    let token = fx.user.token(0);
    let http = client();

    // Audited: both reach the upstream, which learns what they would have got; what the
    // client sends under the audit header is overwritten.
    for (method, path, would) in [
        ("POST", "/payments/transfer", "required"),
        ("GET", "/admin/users", "deny"),
    ] {
        let e = echo(
            http.request(method.parse().unwrap(), fx.envoy.url(path))
                .header("authorization", bearer(&token))
                .header("x-stepup-audit", "none")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(seen(&e, "x-stepup-status"), ["audit"], "{path}: {e}");
        assert_eq!(seen(&e, "x-stepup-audit"), [would], "{path}: {e}");
        assert_eq!(seen(&e, "x-stepup-user"), [fx.user.name.as_str()]);
    }

    // The decision log has both, with rule, policy and the outcome they would have had.
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (rule, policy, would, path) in [
        ("pay", "shop/payments", "required", "/payments/transfer"),
        ("admin", "shop/admin", "deny", "/admin/users"),
    ] {
        let id = format!("{}-{rule}", fx.run);
        let line = lines
            .iter()
            .find(|l| l["rule"] == id.as_str())
            .unwrap_or_else(|| panic!("no decision log line for {id}: {lines:#?}"));
        assert_eq!(line["log"], "stepup.decision");
        assert_eq!(line["outcome"], "audit");
        assert_eq!(line["would_have_been"], would);
        assert_eq!(line["status"], 200);
        assert_eq!(line["policy"], policy);
        assert_eq!(line["path"], path);
        assert_eq!(line["client_id"], fx.pool.client_id.as_str());
        assert_eq!(
            line["jti_sha256"],
            stepup_core::decision_log::hash_jti(&crate::e2e::cognito::jti(&token))
        );
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&token), "no token in the decision log");
    let jti = crate::e2e::cognito::jti(&token);
    assert!(!text.contains(&jti), "the jti only hashed");

    // Counted per rule and as audits.
    let metrics = fx.metrics().await;
    for rule in ["pay", "admin"] {
        let id = format!("{}-{rule}", fx.run);
        assert_eq!(
            series(
                &metrics,
                "stepup_rule_decisions_total",
                &[("rule", &id), ("outcome", "audit")]
            ),
            Some(1.0),
            "{id}"
        );
    }
    for would in ["required", "deny"] {
        assert!(series(&metrics, "stepup_audit_total", &[("outcome", would)]).unwrap() >= 1.0);
    }
    assert!(metrics.contains("stepup_decision_duration_seconds_bucket{"));

    // Enforced after one refresh: the same requests are refused.
    for rule in rules(&fx.run, "ENFORCE") {
        fx.put_rule(rule).await;
    }
    let r = Reply::read(
        http.post(fx.envoy.url("/payments/transfer"))
            .header("authorization", bearer(&token))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_step_up_challenge(
        "enforced /payments/transfer",
        r.status,
        r.www_authenticate.as_deref(),
        r.content_type.as_deref(),
        &r.body.to_string(),
    );
    let r = http
        .get(fx.envoy.url("/admin/users"))
        .header("authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let metrics = fx.metrics().await;
    let id = format!("{}-pay", fx.run);
    assert_eq!(
        series(
            &metrics,
            "stepup_rule_decisions_total",
            &[("rule", &id), ("outcome", "required")]
        ),
        Some(1.0)
    );
    fx.finish().await;
}
