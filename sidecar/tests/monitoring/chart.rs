//! The chart rendered by the real Helm engine (`scripts/helm.sh`, as
//! `operator/tests/chart.rs` uses it) and its monitoring objects, read strictly: each kind
//! is a struct that refuses unknown fields, so a misspelled field (`scrapeTimout`) fails here
//! instead of being ignored by the Prometheus operator.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use stepup_core::testkit::components::skip_or_fail;

pub const RELEASE: &str = "stepup";
pub const NAMESPACE: &str = "stepup-system";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("sidecar/ has a parent")
        .to_path_buf()
}

fn helm_sh(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(repo().join("scripts/helm.sh"))
        .args(args)
        .output()
        .expect("scripts/helm.sh runs")
}

/// Whether the Helm engine is there (installed once per test binary); when it is not,
/// says so (a failure under `CI=true`) and the caller skips.
pub fn helm_available() -> bool {
    static INSTALL: OnceLock<Result<(), String>> = OnceLock::new();
    let installed = INSTALL.get_or_init(|| {
        let out = helm_sh(&["install".as_ref()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        out.status.success().then_some(()).ok_or_else(|| {
            format!(
                "scripts/helm.sh install: {}",
                stderr.lines().last().unwrap_or("failed")
            )
        })
    });
    match installed {
        Ok(()) => true,
        Err(why) => {
            skip_or_fail("the Helm engine", why);
            false
        }
    }
}

/// `scripts/helm.sh lint` of the chart with `values`: (accepted, the JSON report).
pub fn lint(values: &Value, strict: bool) -> (bool, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("values.json");
    std::fs::write(&file, values.to_string()).unwrap();
    let chart = repo().join("charts/stepup");
    let mut args = vec!["lint".as_ref(), chart.as_os_str(), file.as_os_str()];
    if strict {
        args.push("--strict".as_ref());
    }
    let out = helm_sh(&args);
    let report = serde_json::from_slice(&out.stdout).expect("lint prints a JSON report");
    (out.status.success(), report)
}

/// Every document `helm template` makes of the chart with `values`, as JSON.
pub fn render(values: &Value) -> Vec<Value> {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("values.json");
    std::fs::write(&file, values.to_string()).unwrap();
    let (chart, out_dir) = (repo().join("charts/stepup"), tmp.path().join("out"));
    let out = helm_sh(&[
        "render".as_ref(),
        chart.as_os_str(),
        file.as_os_str(),
        RELEASE.as_ref(),
        NAMESPACE.as_ref(),
        out_dir.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "render refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = std::fs::read_to_string(out_dir.join("all.yaml")).unwrap();
    serde_yaml::Deserializer::from_str(&all)
        .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The documents of one kind.
pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The one document of `kind`, read strictly as `T`.
pub fn one<T: DeserializeOwned>(docs: &[Value], kind: &str) -> T {
    match of_kind(docs, kind)[..] {
        [doc] => serde_json::from_value(doc.clone())
            .unwrap_or_else(|e| panic!("{kind} does not read strictly: {e}\n{doc:#}")),
        ref found => panic!("{} documents of kind {kind}", found.len()),
    }
}

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    pub namespace: String,
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
}

/// A Prometheus operator object (`monitoring.coreos.com/v1`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Monitoring<S> {
    pub api_version: String,
    pub kind: String,
    pub metadata: Meta,
    pub spec: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigMap {
    pub api_version: String,
    pub kind: String,
    pub metadata: Meta,
    pub data: Labels,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    pub name: String,
    pub rules: Vec<Alert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    pub alert: String,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub labels: Labels,
    pub annotations: AlertAnnotations,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertAnnotations {
    pub summary: String,
    pub description: String,
    pub runbook_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    pub selector: LabelSelector,
    pub namespace_selector: NamespaceSelector,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodMonitorSpec {
    pub selector: LabelSelector,
    pub namespace_selector: NamespaceSelector,
    pub pod_metrics_endpoints: Vec<Endpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: Labels,
    #[serde(default)]
    pub match_expressions: Vec<Value>,
}

impl LabelSelector {
    /// Whether the selector picks an object with `labels` (matchLabels only).
    pub fn matches(&self, labels: &Labels) -> bool {
        assert!(
            self.match_expressions.is_empty(),
            "matchExpressions: not checked here"
        );
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceSelector {
    #[serde(default)]
    pub any: bool,
    #[serde(default)]
    pub match_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Endpoint {
    pub port: String,
    pub path: String,
    pub interval: String,
    pub scrape_timeout: String,
    #[serde(default)]
    pub relabelings: Vec<Value>,
    #[serde(default)]
    pub metric_relabelings: Vec<Value>,
}

/// The labels at `pointer` of a document (`/metadata/labels`, …).
pub fn labels_at(doc: &Value, pointer: &str) -> Labels {
    let found = doc.pointer(pointer).cloned();
    serde_json::from_value(found.unwrap_or_else(|| Value::Object(Default::default())))
        .unwrap_or_else(|e| panic!("{pointer}: {e}"))
}
