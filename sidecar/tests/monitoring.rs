//! The chart's monitoring parts (`monitoring.*` of `charts/stepup`) against the real Helm
//! render and the real sidecar:
//!
//! - with monitoring on, the dashboard ConfigMap, the PrometheusRule, the ServiceMonitor and
//!   the PodMonitor are read strictly ([`chart`]), their selectors match the authz Service
//!   and a sidecar pod, the dashboard JSON parses and every alert is complete, its
//!   runbook_url pointing at a heading of `docs/rolling-out-a-policy.md`;
//! - with monitoring (or a part) off, none of them is rendered;
//! - every metric the dashboard and the alerts read is one the sidecar exports, with the
//!   label values they select: an in-process sidecar gets traffic of every kind
//!   ([`traffic`]) and its `/metrics` is scraped ([`promql`]).
//!
//! Without the Helm engine the tests say so and pass, except under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "monitoring/chart.rs"]
mod chart;
#[path = "monitoring/promql.rs"]
mod promql;
#[path = "monitoring/traffic.rs"]
mod traffic;

use chart::{
    Alert, ConfigMap, Labels, Monitoring, NAMESPACE, PodMonitorSpec, RuleSpec, ServiceMonitorSpec,
    helm_available, labels_at, of_kind, one, render, repo,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const KINDS: [&str; 4] = [
    "ConfigMap",
    "PrometheusRule",
    "ServiceMonitor",
    "PodMonitor",
];

/// The alerts of the chart, by name.
const ALERTS: [&str; 7] = [
    "StepUpFailClosed",
    "StepUpJwksFetchFailing",
    "StepUpJwksStale",
    "StepUpPolicyIndexStale",
    "StepUpStoreErrors",
    "StepUpLockoutsSpiking",
    "StepUpAuditWouldDeny",
];

/// The metric families the dashboard must show (the issue's list).
const DASHBOARD_METRICS: [&str; 14] = [
    "stepup_decision_duration_seconds",
    "stepup_decisions_total",
    "stepup_rule_decisions_total",
    "stepup_audit_total",
    "stepup_api_request_duration_seconds",
    "stepup_api_requests_total",
    "stepup_jwks_age_seconds",
    "stepup_jwks_fetch_total",
    "stepup_policy_index_age_seconds",
    "stepup_policy_rules",
    "stepup_store_errors_total",
    "stepup_token_errors_total",
    "stepup_token_cache_total",
    "stepup_completion_cache_total",
];

macro_rules! require_helm {
    () => {
        if !helm_available() {
            return;
        }
    };
}

fn authz_on() -> Value {
    json!({
        "aws": {"region": "eu-west-1"},
        "authz": {"enabled": true, "userPoolId": "eu-west-1_AbCdEf123",
                  "allowedClientIds": ["client-a"], "policyRefreshSeconds": 20},
    })
}

/// `base` with `monitoring` set.
fn with_monitoring(mut base: Value, monitoring: Value) -> Value {
    base["monitoring"] = monitoring;
    base
}

fn relabel_cluster() -> Value {
    json!({"targetLabel": "cluster", "replacement": "prod"})
}

fn drop_cache_metrics() -> Value {
    json!({"action": "drop", "sourceLabels": ["__name__"], "regex": "stepup_.*_cache_total"})
}

/// Everything on, with values that differ from the defaults.
fn monitoring_on() -> Value {
    with_monitoring(
        authz_on(),
        json!({
            "enabled": true,
            "labels": {"release": "kube-prometheus-stack"},
            "dashboard": {"namespace": "grafana", "annotations": {"grafana_folder": "Security"}},
            "serviceMonitor": {"relabelings": [relabel_cluster()]},
            "podMonitor": {"enabled": true, "selector": {"matchLabels": {"app": "payments"}},
                           "namespaceSelector": {"matchNames": ["payments"]}, "interval": "15s",
                           "metricRelabelings": [drop_cache_metrics()]},
            "prometheusRule": {
                "runbookUrl": "https://runbooks.example/stepup/rolling-out-a-policy.md",
                "additionalAlertLabels": {"team": "identity"},
                "alerts": {"failClosed": {"threshold": 0.25},
                           "policyIndexStale": {"refreshPeriods": 3}},
            },
        }),
    )
}

/// The monitoring kinds a render holds.
fn monitoring_kinds(docs: &[Value]) -> BTreeSet<String> {
    KINDS
        .iter()
        .filter(|k| !of_kind(docs, k).is_empty())
        .map(|k| k.to_string())
        .collect()
}

/// The anchors GitHub gives the headings of a Markdown page.
fn heading_anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

/// The dashboard of a render, parsed, after checking its ConfigMap.
fn dashboard(docs: &[Value], label: (&str, &str)) -> Value {
    let cm: ConfigMap = one(docs, "ConfigMap");
    assert_eq!(cm.api_version, "v1");
    assert_eq!(
        cm.metadata.labels.get(label.0).map(String::as_str),
        Some(label.1)
    );
    let keys: Vec<&String> = cm.data.keys().collect();
    assert_eq!(keys, ["stepup.json"], "one dashboard file");
    let parsed: Value = serde_json::from_str(&cm.data["stepup.json"])
        .unwrap_or_else(|e| panic!("the dashboard JSON does not parse: {e}"));
    let file = std::fs::read_to_string(repo().join("charts/stepup/dashboards/stepup.json"));
    assert_eq!(
        parsed,
        serde_json::from_str::<Value>(&file.unwrap()).unwrap()
    );
    parsed
}

/// Every PromQL expression of the dashboard: panel targets and variable queries.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let panels = dashboard["panels"].as_array().unwrap();
    let targets = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().unwrap().to_owned());
    let variables = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["query"]["query"].as_str().map(str::to_owned));
    targets.chain(variables).collect()
}

/// The element of a list of named objects (ports, env, containers) with this `name`.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    let items = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"));
    let found = items.iter().find(|item| item["name"] == name);
    found.unwrap_or_else(|| panic!("no {name:?} in {list}"))
}

fn alerts(docs: &[Value]) -> Vec<Alert> {
    let rule: Monitoring<RuleSpec> = one(docs, "PrometheusRule");
    assert_eq!(rule.api_version, "monitoring.coreos.com/v1");
    rule.spec.groups.into_iter().flat_map(|g| g.rules).collect()
}

fn alert<'a>(alerts: &'a [Alert], name: &str) -> &'a Alert {
    alerts.iter().find(|a| a.alert == name).unwrap()
}

#[test]
fn monitoring_off_renders_no_monitoring_objects() {
    require_helm!();
    for values in [json!({}), authz_on()] {
        assert_eq!(
            monitoring_kinds(&render(&values)),
            BTreeSet::new(),
            "defaults"
        );
    }
    // Every part on but the main switch off; then the main switch on and every part off.
    let parts = json!({"dashboard": {"enabled": true}, "serviceMonitor": {"enabled": true},
                       "podMonitor": {"enabled": true}, "prometheusRule": {"enabled": true}});
    let mut off = parts.clone();
    off["enabled"] = json!(false);
    let mut parts_off = json!({"enabled": true});
    for part in [
        "dashboard",
        "serviceMonitor",
        "podMonitor",
        "prometheusRule",
    ] {
        parts_off[part] = json!({"enabled": false});
    }
    for monitoring in [off, parts_off] {
        let docs = render(&with_monitoring(authz_on(), monitoring.clone()));
        assert_eq!(monitoring_kinds(&docs), BTreeSet::new(), "{monitoring}");
    }
    // Monitoring on without the authz Service: no ServiceMonitor (nothing to select).
    let mut all_parts = parts;
    all_parts["enabled"] = json!(true);
    let docs = render(&json!({ "monitoring": all_parts }));
    assert_eq!(
        monitoring_kinds(&docs),
        ["ConfigMap", "PodMonitor", "PrometheusRule"]
            .map(String::from)
            .into(),
    );
}

#[test]
fn monitoring_objects_carry_the_standard_and_prometheus_labels() {
    require_helm!();
    let docs = render(&monitoring_on());
    assert_eq!(monitoring_kinds(&docs), KINDS.map(String::from).into());
    let cm: ConfigMap = one(&docs, "ConfigMap");
    let rule: Monitoring<RuleSpec> = one(&docs, "PrometheusRule");
    let sm: Monitoring<ServiceMonitorSpec> = one(&docs, "ServiceMonitor");
    let pm: Monitoring<PodMonitorSpec> = one(&docs, "PodMonitor");
    let objects = [
        (
            cm.kind.as_str(),
            &cm.metadata,
            "stepup-dashboard",
            "grafana",
        ),
        (rule.kind.as_str(), &rule.metadata, "stepup", NAMESPACE),
        (sm.kind.as_str(), &sm.metadata, "stepup-authz", NAMESPACE),
        (pm.kind.as_str(), &pm.metadata, "stepup-sidecars", NAMESPACE),
    ];
    for (kind, meta, name, namespace) in objects {
        assert_eq!(
            (meta.name.as_str(), meta.namespace.as_str()),
            (name, namespace),
            "{kind}"
        );
        for (k, v) in [
            ("app.kubernetes.io/name", "stepup"),
            ("app.kubernetes.io/instance", "stepup"),
            ("app.kubernetes.io/component", "monitoring"),
            ("app.kubernetes.io/managed-by", "Helm"),
            ("release", "kube-prometheus-stack"),
        ] {
            assert_eq!(
                meta.labels.get(k).map(String::as_str),
                Some(v),
                "{kind}: label {k}"
            );
        }
    }
    assert_eq!(sm.api_version, "monitoring.coreos.com/v1");
    assert_eq!(pm.api_version, "monitoring.coreos.com/v1");
    let group_names: Vec<&str> = rule.spec.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(group_names, ["stepup"]);
    // Scrape settings and relabelings go through as given.
    let (service, pod) = (&sm.spec.endpoints[0], &pm.spec.pod_metrics_endpoints[0]);
    assert_eq!(
        (service.scrape_timeout.as_str(), pod.scrape_timeout.as_str()),
        ("10s", "10s")
    );
    assert_eq!(service.relabelings, [relabel_cluster()]);
    assert!(service.metric_relabelings.is_empty() && pod.relabelings.is_empty());
    assert_eq!(pod.metric_relabelings, [drop_cache_metrics()]);
    assert_eq!(cm.metadata.annotations["grafana_folder"], "Security");

    // Another sidecar label, as kube-prometheus-stack's grafana.sidecar.dashboards.label.
    let mut custom = monitoring_on();
    custom["monitoring"]["dashboard"]["label"] = json!("example.com/dashboard");
    custom["monitoring"]["dashboard"]["labelValue"] = json!("stepup");
    dashboard(&render(&custom), ("example.com/dashboard", "stepup"));
}

#[test]
fn the_dashboard_parses_and_shows_every_part_of_stepup() {
    require_helm!();
    let d = dashboard(&render(&monitoring_on()), ("grafana_dashboard", "1"));
    assert_eq!(d["uid"], "stepup-overview");
    assert_eq!(d["title"], "stepup");
    let variables = d["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus data source variable"
    );
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "panel id {} twice",
            p["id"]
        );
        let pos = &p["gridPos"];
        assert!(
            pos["x"].as_u64().unwrap() + pos["w"].as_u64().unwrap() <= 24,
            "{}",
            p["title"]
        );
        if p["type"] == "row" {
            continue;
        }
        assert!(!p["title"].as_str().unwrap().is_empty());
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}: no query", p["title"]);
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }
    let exprs = dashboard_exprs(&d);
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| promql::metric_names(e)).collect();
    for family in DASHBOARD_METRICS {
        assert!(
            used.iter()
                .any(|u| u == family || u.strip_suffix("_bucket") == Some(family)),
            "no panel shows {family}"
        );
    }
    for e in &exprs {
        if e.contains("histogram_quantile") {
            assert!(e.contains("_bucket") && e.contains("(le, "), "{e}");
        }
    }
}

#[test]
fn every_alert_is_complete_and_follows_its_values() {
    require_helm!();
    let docs = render(&monitoring_on());
    let alerts = alerts(&docs);
    let names: Vec<&str> = alerts.iter().map(|a| a.alert.as_str()).collect();
    assert_eq!(names, ALERTS);
    let runbook = std::fs::read_to_string(repo().join("docs/rolling-out-a-policy.md")).unwrap();
    let anchors = heading_anchors(&runbook);
    let duration = |s: &str| {
        !s.is_empty()
            && s.trim_end_matches(char::is_alphabetic)
                .chars()
                .all(|c| c.is_ascii_digit())
    };
    for a in &alerts {
        let at = &a.alert;
        assert!(!a.expr.trim().is_empty(), "{at}: expr");
        assert!(duration(&a.for_), "{at}: for {:?}", a.for_);
        assert!(!a.labels["severity"].is_empty(), "{at}: severity");
        assert_eq!(a.labels["team"], "identity", "{at}: additional labels");
        assert!(!a.annotations.summary.is_empty() && !a.annotations.description.is_empty());
        let (page, anchor) = a.annotations.runbook_url.split_once('#').unwrap();
        assert_eq!(
            page,
            "https://runbooks.example/stepup/rolling-out-a-policy.md"
        );
        assert_eq!(anchor, at.to_lowercase());
        assert!(
            anchors.contains(anchor),
            "{at}: no heading #{anchor} in the runbook page"
        );
        assert!(
            !promql::metric_names(&a.expr).is_empty(),
            "{at} reads no stepup metric"
        );
    }
    let fail_closed = alert(&alerts, "StepUpFailClosed");
    assert!(
        fail_closed
            .expr
            .contains(r#"stepup_decisions_total{outcome="error"}"#)
    );
    assert!(fail_closed.expr.ends_with("> 0.25"), "{}", fail_closed.expr);
    assert_eq!(fail_closed.labels["severity"], "critical");
    // N refresh periods: 3 x authz.policyRefreshSeconds (20), or x an explicit period.
    let stale = alert(&alerts, "StepUpPolicyIndexStale");
    assert!(stale.expr.ends_with("> 60"), "{}", stale.expr);
    let mut explicit = monitoring_on();
    explicit["monitoring"]["prometheusRule"]["alerts"]["policyIndexStale"]["refreshSeconds"] =
        json!(7);
    let alerts = self::alerts(&render(&explicit));
    assert!(
        alert(&alerts, "StepUpPolicyIndexStale")
            .expr
            .ends_with("> 21")
    );
    assert!(
        alert(&alerts, "StepUpLockoutsSpiking")
            .expr
            .contains(r#"outcome="locked""#)
    );

    // One alert off; the default runbook page is the chart's docs.
    let mut fewer = monitoring_on();
    fewer["monitoring"]["prometheusRule"]["alerts"]["auditWouldDeny"] = json!({"enabled": false});
    fewer["monitoring"]["prometheusRule"]["runbookUrl"] = json!("");
    let alerts = self::alerts(&render(&fewer));
    assert!(alerts.iter().all(|a| a.alert != "StepUpAuditWouldDeny"));
    assert!(
        alerts[0]
            .annotations
            .runbook_url
            .contains("/docs/rolling-out-a-policy.md#")
    );
}

#[test]
fn the_monitors_select_the_authz_service_and_sidecar_pods() {
    require_helm!();
    let docs = render(&monitoring_on());
    let sm: Monitoring<ServiceMonitorSpec> = one(&docs, "ServiceMonitor");
    let service = of_kind(&docs, "Service")[0];
    assert!(
        sm.spec
            .selector
            .matches(&labels_at(service, "/metadata/labels"))
    );
    assert_eq!(sm.spec.namespace_selector.match_names, [NAMESPACE]);
    assert_eq!(service["metadata"]["namespace"], NAMESPACE);
    // The endpoint's port is the Service port in front of the admin listener.
    let [endpoint] = &sm.spec.endpoints[..] else {
        panic!("one endpoint")
    };
    assert_eq!(
        (endpoint.path.as_str(), endpoint.interval.as_str()),
        ("/metrics", "30s")
    );
    let port = named(&service["spec"]["ports"], &endpoint.port);
    let deployment = of_kind(&docs, "Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "stepup-authz")
        .unwrap();
    let pod_labels = labels_at(deployment, "/spec/template/metadata/labels");
    let service_selector = labels_at(service, "/spec/selector");
    assert!(
        service_selector
            .iter()
            .all(|(k, v)| pod_labels.get(k) == Some(v))
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let admin = named(&container["ports"], port["targetPort"].as_str().unwrap());
    let listen = named(&container["env"], "STEPUP_ADMIN_LISTEN")["value"].as_str();
    assert!(
        listen
            .unwrap()
            .ends_with(&format!(":{}", admin["containerPort"]))
    );

    // The PodMonitor finds the sidecar of examples/istio/pod-sidecar.yaml by its admin port.
    let pm: Monitoring<PodMonitorSpec> = one(&docs, "PodMonitor");
    let example = std::fs::read_to_string(repo().join("examples/istio/pod-sidecar.yaml")).unwrap();
    let example: Value = serde_yaml::from_str(&example).unwrap();
    let example_labels: Labels = labels_at(&example, "/spec/template/metadata/labels");
    assert!(pm.spec.selector.matches(&example_labels));
    assert_eq!(pm.spec.namespace_selector.match_names, ["payments"]);
    let [endpoint] = &pm.spec.pod_metrics_endpoints[..] else {
        panic!("one endpoint")
    };
    assert_eq!(
        (endpoint.path.as_str(), endpoint.interval.as_str()),
        ("/metrics", "15s")
    );
    let sidecar = named(
        &example["spec"]["template"]["spec"]["containers"],
        "stepup-sidecar",
    );
    named(&sidecar["ports"], &endpoint.port);

    // The defaults: every namespace, every pod with the port.
    let mut defaults = monitoring_on();
    defaults["monitoring"]["podMonitor"] = json!({"enabled": true});
    let pm: Monitoring<PodMonitorSpec> = one(&render(&defaults), "PodMonitor");
    assert!(pm.spec.namespace_selector.any && pm.spec.selector.matches(&Labels::new()));
    assert_eq!(pm.spec.pod_metrics_endpoints[0].port, "stepup-admin");
}

#[test]
fn monitoring_values_lint_clean_and_bad_ones_are_refused() {
    require_helm!();
    let (ok, report) = chart::lint(&monitoring_on(), true);
    assert!(
        ok && report["errors"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    let bad = [
        json!({"monitoring": {"enabled": "yes"}}),
        json!({"monitoring": {"enabeld": true}}),
        json!({"monitoring": {"serviceMonitor": {"interval": "30 seconds"}}}),
        json!({"monitoring": {"prometheusRule": {"alerts": {"failClosed": {"threshold": -1}}}}}),
        json!({"monitoring": {"prometheusRule": {"alerts": {"lockout": {"enabled": true}}}}}),
        json!({"monitoring": {"podMonitor": {"namespaceSelector": {"names": ["a"]}}}}),
    ];
    for values in bad {
        let (ok, report) = chart::lint(&values, false);
        assert!(!ok, "lint accepted {values}: {report:#}");
    }
}

/// The names the dashboard and the alerts read must be names the sidecar exports (a
/// `_bucket` name needs a histogram, not the exporter's default summary), and every literal
/// label value they select must occur after traffic of every kind.
#[tokio::test]
async fn every_metric_the_dashboard_and_alerts_use_is_exported_by_the_sidecar() {
    require_helm!();
    let docs = render(&monitoring_on());
    let mut exprs = dashboard_exprs(&dashboard(&docs, ("grafana_dashboard", "1")));
    exprs.extend(alerts(&docs).into_iter().map(|a| a.expr));

    let text = traffic::scrape_after_traffic().await;
    let exported = promql::Exposition::parse(&text);
    let mut missing = BTreeSet::new();
    let mut unseen = BTreeSet::new();
    for expr in &exprs {
        for name in promql::metric_names(expr) {
            if exported.family_of(&name).is_none() {
                missing.insert(name);
            }
        }
        for (name, matchers) in promql::selectors(expr) {
            let Some(family) = exported.family_of(&name) else {
                continue;
            };
            // Target labels (namespace, job, pod) and dashboard variables are Prometheus'.
            for m in matchers.iter().filter(|m| !m.value.contains('$')) {
                if !exported.has(family, m) {
                    unseen.insert(format!(
                        "{family}{{{}{}{:?}}}",
                        m.label,
                        m.op.as_str(),
                        m.value
                    ));
                }
            }
        }
    }
    assert!(
        missing.is_empty() && unseen.is_empty(),
        "not exported by the sidecar: {missing:?}\nlabel values never seen: {unseen:?}\n\
         exported families: {:?}",
        exported.types
    );
}
