//! Tests of the Helm chart `charts/stepup`, with the real Helm v4 engine (PyPI
//! `helm-python-sdk`, installed by `scripts/helm.sh install`; no `helm` binary, no cluster).
//!
//! Every rendered document is deserialized *strictly* into its k8s-openapi type: parse,
//! serialize back, and compare with the original (nulls dropped). k8s-openapi ignores unknown
//! fields, so without the round trip a misspelled field (`readOnlyRootFilesytem`) would pass
//! silently and the cluster would ignore it too.
//!
//! When the engine cannot be installed (no network, no pip) the tests print why and pass,
//! except under `CI=true`, where that is a failure (see `common::in_ci`).

use crate::common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const RELEASE: &str = "stepup";
const NAMESPACE: &str = "stepup-system";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/stepup-operator";
const AUTHZ_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/stepup-authz";
const POOL_ID: &str = "eu-west-1_AbCdEf123";

fn chart_dir() -> PathBuf {
    common::repo("charts/stepup")
}

/// Installs the Helm engine once per test binary; `None` (after saying why) when it is not
/// available and this is not CI.
fn helm() -> Option<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let out = Command::new(common::repo("scripts/helm.sh"))
            .arg("install")
            .output()
            .map_err(|e| format!("cannot run scripts/helm.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or("no output").to_owned();
            Err(format!("scripts/helm.sh install failed: {last}"))
        }
    });
    match result {
        Ok(()) => Some(()),
        Err(e) if common::in_ci() => {
            panic!("Helm engine unavailable under CI=true: {e}")
        }
        Err(e) => {
            eprintln!("skipping: Helm engine unavailable ({e})");
            None
        }
    }
}

/// Skips the test (see [`helm`]) when the engine is not there.
macro_rules! require_helm {
    () => {
        if helm().is_none() {
            return;
        }
    };
}

/// Values that turn on everything the defaults leave off.
fn custom_values() -> Value {
    json!({
        "aws": {"region": "eu-west-1", "tablePrefix": "prod"},
        "image": {"repository": "registry.example/stepup", "tag": "1.2.3", "pullPolicy": "Always"},
        "operator": {
            "replicas": 3,
            "watchNamespace": "payments",
            "serviceAccount": {"roleArn": ROLE_ARN},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra",
                             "effect": "NoSchedule"}],
            "probes": {"enabled": true},
        },
        "authz": {
            "enabled": true,
            "replicas": 3,
            "userPoolId": POOL_ID,
            "allowedClientIds": ["client-a", "client-b"],
            "serviceAccount": {"roleArn": AUTHZ_ROLE_ARN},
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                 "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "authz"}}}}]}},
        },
    })
}

fn write_values(dir: &Path, values: &Value) -> PathBuf {
    let path = dir.join("values.json");
    std::fs::write(&path, serde_json::to_vec_pretty(values).unwrap()).unwrap();
    path
}

/// `scripts/helm.sh lint`: (exit ok, the JSON report).
fn lint(values: &Value, strict: bool) -> (bool, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let values = write_values(tmp.path(), values);
    let mut cmd = Command::new(common::repo("scripts/helm.sh"));
    cmd.arg("lint").arg(chart_dir()).arg(&values);
    if strict {
        cmd.arg("--strict");
    }
    let out = cmd.output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "lint printed no JSON report ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

/// `scripts/helm.sh render` into a temporary directory: every YAML document of `all.yaml`
/// (templates and CRDs), or the engine's refusal.
fn render(values: &Value) -> Result<Vec<Value>, String> {
    let tmp = tempfile::tempdir().unwrap();
    let values = write_values(tmp.path(), values);
    let outdir = tmp.path().join("out");
    let out = Command::new(common::repo("scripts/helm.sh"))
        .arg("render")
        .arg(chart_dir())
        .arg(&values)
        .arg(RELEASE)
        .arg(NAMESPACE)
        .arg(&outdir)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let notes = outdir.join("stepup/templates/NOTES.txt");
    assert!(notes.is_file(), "render wrote no NOTES.txt");
    let all = std::fs::read_to_string(outdir.join("all.yaml")).unwrap();
    Ok(yaml_documents(&all))
}

/// Every non-empty document of a multi-document YAML stream, as JSON.
fn yaml_documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| {
            let v = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("YAML: {e}"));
            serde_json::to_value(v).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The value without null members (the typed round trip drops them).
fn drop_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), drop_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(drop_nulls).collect()),
        other => other.clone(),
    }
}

/// Deserializes `doc` into `T` and fails when the round trip loses or changes anything, i.e.
/// when the document has a field `T` does not know.
fn strict<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| {
        panic!(
            "{} does not deserialize as {}: {e}",
            describe(doc),
            std::any::type_name::<T>()
        )
    });
    let back = drop_nulls(&serde_json::to_value(&typed).unwrap());
    let original = drop_nulls(doc);
    if back != original {
        panic!(
            "{} changes in a round trip through {} (an unknown or misspelled field?)\n\
             first difference: {}",
            describe(doc),
            std::any::type_name::<T>(),
            first_difference(&original, &back, "")
        );
    }
    typed
}

fn describe(doc: &Value) -> String {
    format!(
        "{}/{}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn first_difference(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) if va != vb => {
                        return first_difference(va, vb, &format!("{path}.{k}"));
                    }
                    (Some(_), None) => return format!("{path}.{k} is dropped"),
                    (None, Some(_)) => return format!("{path}.{k} appears"),
                    _ => {}
                }
            }
            format!("{path}: objects differ")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                if va != vb {
                    return first_difference(va, vb, &format!("{path}[{i}]"));
                }
            }
            format!("{path}: arrays differ")
        }
        _ => format!("{path}: {a} became {b}"),
    }
}

/// A rendered object, typed by its kind.
#[derive(Debug)]
enum Obj {
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    ServiceAccount(Box<ServiceAccount>),
    ClusterRole(Box<ClusterRole>),
    ClusterRoleBinding(Box<ClusterRoleBinding>),
    Role(Box<Role>),
    RoleBinding(Box<RoleBinding>),
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    Crd(Box<CustomResourceDefinition>),
}

fn typed(doc: &Value) -> Obj {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    match (api, kind) {
        ("apps/v1", "Deployment") => Obj::Deployment(Box::new(strict(doc))),
        ("v1", "Service") => Obj::Service(Box::new(strict(doc))),
        ("v1", "ServiceAccount") => Obj::ServiceAccount(Box::new(strict(doc))),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => Obj::ClusterRole(Box::new(strict(doc))),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            Obj::ClusterRoleBinding(Box::new(strict(doc)))
        }
        ("rbac.authorization.k8s.io/v1", "Role") => Obj::Role(Box::new(strict(doc))),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => Obj::RoleBinding(Box::new(strict(doc))),
        ("policy/v1", "PodDisruptionBudget") => Obj::PodDisruptionBudget(Box::new(strict(doc))),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => Obj::Crd(Box::new(strict(doc))),
        _ => panic!("unexpected object {api} {kind} ({})", describe(doc)),
    }
}

/// A typed render: every object, and helpers to find them.
struct Rendered {
    objs: Vec<Obj>,
}

impl Rendered {
    fn of(values: &Value) -> Self {
        let docs = render(values).unwrap_or_else(|e| panic!("render failed: {e}"));
        Rendered {
            objs: docs.iter().map(typed).collect(),
        }
    }

    fn kinds(&self) -> BTreeSet<&'static str> {
        self.objs
            .iter()
            .map(|o| match o {
                Obj::Deployment(_) => "Deployment",
                Obj::Service(_) => "Service",
                Obj::ServiceAccount(_) => "ServiceAccount",
                Obj::ClusterRole(_) => "ClusterRole",
                Obj::ClusterRoleBinding(_) => "ClusterRoleBinding",
                Obj::Role(_) => "Role",
                Obj::RoleBinding(_) => "RoleBinding",
                Obj::PodDisruptionBudget(_) => "PodDisruptionBudget",
                Obj::Crd(_) => "CustomResourceDefinition",
            })
            .collect()
    }

    fn deployments(&self) -> Vec<&Deployment> {
        self.objs
            .iter()
            .filter_map(|o| match o {
                Obj::Deployment(d) => Some(&**d),
                _ => None,
            })
            .collect()
    }

    fn deployment(&self, component: &str) -> &Deployment {
        let name = format!("{RELEASE}-{component}");
        self.deployments()
            .into_iter()
            .find(|d| d.metadata.name.as_deref() == Some(&name))
            .unwrap_or_else(|| panic!("no Deployment {name}"))
    }

    fn service_account(&self, name: &str) -> &ServiceAccount {
        self.objs
            .iter()
            .find_map(|o| match o {
                Obj::ServiceAccount(s) if s.metadata.name.as_deref() == Some(name) => Some(&**s),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no ServiceAccount {name}"))
    }

    /// Every RBAC rule with the name and namespace of the role holding it.
    fn rules(&self) -> Vec<(String, Option<String>, &PolicyRule)> {
        let mut out = Vec::new();
        for o in &self.objs {
            let (meta, rules) = match o {
                Obj::ClusterRole(r) => (&r.metadata, r.rules.as_deref()),
                Obj::Role(r) => (&r.metadata, r.rules.as_deref()),
                _ => continue,
            };
            for rule in rules.unwrap_or_default() {
                out.push((
                    meta.name.clone().unwrap_or_default(),
                    meta.namespace.clone(),
                    rule,
                ));
            }
        }
        out
    }
}

fn pod_spec(d: &Deployment) -> &PodSpec {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod spec")
}

fn container<'a>(d: &'a Deployment, name: &str) -> &'a Container {
    pod_spec(d)
        .containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn env(c: &Container, name: &str) -> Option<String> {
    c.env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).expect("replicas")
}

/// The container port a probe's named or numbered port resolves to.
fn probe_port(c: &Container, port: &IntOrString) -> i32 {
    match port {
        IntOrString::Int(p) => *p,
        IntOrString::String(name) => c
            .ports
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
            .unwrap_or_else(|| panic!("probe port {name} is not a container port")),
    }
}

fn has_errors(report: &Value) -> bool {
    report["errors"].as_array().is_some_and(|e| !e.is_empty())
}

#[test]
fn chart_lints_clean_with_default_and_custom_values() {
    require_helm!();
    for (name, values) in [("default", json!({})), ("custom", custom_values())] {
        let (ok, report) = lint(&values, false);
        assert!(
            ok && !has_errors(&report),
            "lint ({name} values): {report:#}"
        );
        assert_eq!(report["total_charts_linted"], 1, "{report:#}");
        let (ok, report) = lint(&values, true);
        assert!(
            ok && !has_errors(&report),
            "lint --strict ({name} values): {report:#}"
        );
        let warnings: Vec<&Value> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["severity"].as_i64().unwrap_or(3) >= 2)
            .collect();
        assert!(warnings.is_empty(), "lint warnings ({name}): {warnings:#?}");
    }
}

#[test]
fn default_values_render_the_operator_only() {
    require_helm!();
    let r = Rendered::of(&json!({}));
    let expected: BTreeSet<&str> = [
        "CustomResourceDefinition",
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ]
    .into_iter()
    .collect();
    assert_eq!(r.kinds(), expected);
    assert_eq!(r.deployments().len(), 1, "only the operator Deployment");

    let op = r.deployment("operator");
    assert_eq!(op.metadata.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(replicas(op), 2);
    let c = container(op, "operator");
    assert_eq!(
        c.command.as_deref(),
        Some(&["/usr/local/bin/stepup-operator".to_owned()][..])
    );
    assert_eq!(
        c.args.as_deref(),
        Some(&["run".to_owned(), "--leader-elect".to_owned()][..])
    );
    assert_eq!(
        c.image.as_deref(),
        Some("stepup:0.1.0"),
        "tag defaults to appVersion"
    );
    assert_eq!(env(c, "ENV_PREFIX"), None, "no prefix by default");
    assert_eq!(env(c, "STEPUP_DYNAMODB_ENDPOINT"), None);
    assert_eq!(env(c, "STEPUP_WATCH_NAMESPACE"), None);

    // Every namespace: a ClusterRole, bound to the operator's ServiceAccount.
    let sa = r.service_account("stepup-operator");
    assert!(
        sa.metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key("eks.amazonaws.com/role-arn")),
        "no IRSA annotation without a role"
    );
    let binding = r
        .objs
        .iter()
        .find_map(|o| match o {
            Obj::ClusterRoleBinding(b) => Some(b),
            _ => None,
        })
        .unwrap();
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    let subject = &binding.subjects.as_deref().unwrap()[0];
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        ("stepup-operator", Some(NAMESPACE))
    );
}

#[test]
fn custom_values_render_authz_irsa_and_a_namespaced_role() {
    require_helm!();
    let r = Rendered::of(&custom_values());
    let kinds = r.kinds();
    for k in ["Service", "PodDisruptionBudget", "Role", "RoleBinding"] {
        assert!(kinds.contains(k), "{k} missing: {kinds:?}");
    }
    assert!(
        !kinds.contains("ClusterRole") && !kinds.contains("ClusterRoleBinding"),
        "watchNamespace set: no cluster-wide RBAC, got {kinds:?}"
    );

    // Operator.
    let op = r.deployment("operator");
    assert_eq!(replicas(op), 3);
    let c = container(op, "operator");
    assert_eq!(c.image.as_deref(), Some("registry.example/stepup:1.2.3"));
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(env(c, "ENV_PREFIX").as_deref(), Some("prod"));
    assert_eq!(env(c, "AWS_REGION").as_deref(), Some("eu-west-1"));
    assert_eq!(
        env(c, "STEPUP_WATCH_NAMESPACE").as_deref(),
        Some("payments")
    );
    let spec = pod_spec(op);
    assert_eq!(
        spec.node_selector.as_ref().unwrap()["kubernetes.io/os"],
        "linux"
    );
    assert_eq!(
        spec.tolerations.as_ref().unwrap()[0].key.as_deref(),
        Some("dedicated")
    );
    let sa = r.service_account("stepup-operator");
    assert_eq!(
        sa.metadata.annotations.as_ref().unwrap()["eks.amazonaws.com/role-arn"],
        ROLE_ARN
    );

    // Namespaced RBAC: StepUpPolicy rights in the watched namespace, leases in the release's.
    let rules = r.rules();
    assert!(
        rules
            .iter()
            .any(|(_, ns, rule)| ns.as_deref() == Some("payments")
                && rule.resources.as_deref() == Some(&["stepuppolicies".to_owned()][..])),
        "{rules:#?}"
    );
    assert!(
        rules
            .iter()
            .any(|(_, ns, rule)| ns.as_deref() == Some(NAMESPACE)
                && rule.api_groups.as_deref() == Some(&["coordination.k8s.io".to_owned()][..]))
    );

    // The shared ext_authz service.
    let authz = r.deployment("authz");
    assert_eq!(replicas(authz), 3);
    let c = container(authz, "authz");
    assert_eq!(
        c.command.as_deref(),
        Some(&["/usr/local/bin/stepup-sidecar".to_owned()][..])
    );
    assert_eq!(env(c, "STEPUP_USER_POOL_ID").as_deref(), Some(POOL_ID));
    // The strong verification unless a user opts into the weak one.
    assert_eq!(
        env(c, "STEPUP_VERIFICATION").as_deref(),
        Some("cognito-mfa")
    );
    assert_eq!(env(c, "STEPUP_CORS_ALLOW_ORIGIN").as_deref(), Some("*"));
    assert_eq!(
        env(c, "STEPUP_CORS_ALLOW_HEADERS"),
        None,
        "the seed's list by default"
    );
    assert_eq!(
        env(c, "STEPUP_ALLOWED_CLIENT_IDS").as_deref(),
        Some("client-a,client-b")
    );
    assert_eq!(env(c, "STEPUP_REGION").as_deref(), Some("eu-west-1"));
    assert_eq!(env(c, "STEPUP_TABLE_PREFIX").as_deref(), Some("prod"));
    assert_eq!(
        env(c, "STEPUP_GRPC_LISTEN").as_deref(),
        Some("0.0.0.0:9001")
    );
    assert_eq!(
        env(c, "STEPUP_ADMIN_LISTEN").as_deref(),
        Some("0.0.0.0:9004")
    );
    let live = c
        .liveness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .unwrap();
    let ready = c
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .unwrap();
    assert_eq!(
        (live.path.as_deref(), probe_port(c, &live.port)),
        (Some("/healthz"), 9004)
    );
    assert_eq!(
        (ready.path.as_deref(), probe_port(c, &ready.port)),
        (Some("/readyz"), 9004)
    );
    assert!(
        pod_spec(authz).affinity.is_some(),
        "affinity from values is applied"
    );
    assert_eq!(
        pod_spec(authz).automount_service_account_token,
        Some(false),
        "the ext_authz service needs no Kubernetes API token"
    );
    let sa = r.service_account("stepup-authz");
    assert_eq!(
        sa.metadata.annotations.as_ref().unwrap()["eks.amazonaws.com/role-arn"],
        AUTHZ_ROLE_ARN
    );

    let svc = r
        .objs
        .iter()
        .find_map(|o| match o {
            Obj::Service(s) => Some(s),
            _ => None,
        })
        .unwrap();
    let ports: Vec<(i32, Option<&str>)> = svc
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_deref()
        .unwrap()
        .iter()
        .map(|p| (p.port, p.app_protocol.as_deref()))
        .collect();
    for want in [
        (9001, Some("grpc")),
        (9002, Some("http")),
        (9003, Some("http")),
    ] {
        assert!(
            ports.contains(&want),
            "Service ports {ports:?} lack {want:?}"
        );
    }
    let selector = svc.spec.as_ref().unwrap().selector.as_ref().unwrap();
    let pod_labels = authz
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap();
    for (k, v) in selector {
        assert_eq!(
            pod_labels.labels.as_ref().unwrap().get(k),
            Some(v),
            "Service selector {k} does not match the pods"
        );
    }

    let pdb = r
        .objs
        .iter()
        .find_map(|o| match o {
            Obj::PodDisruptionBudget(p) => Some(p),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        pdb.spec.as_ref().unwrap().min_available,
        Some(IntOrString::Int(1))
    );
}

#[test]
fn every_container_runs_restricted_with_resources_and_scrape_annotations() {
    require_helm!();
    for values in [json!({}), custom_values()] {
        let r = Rendered::of(&values);
        for d in r.deployments() {
            let name = d.metadata.name.clone().unwrap_or_default();
            let spec = pod_spec(d);
            let pod_sc = spec.security_context.as_ref().expect("pod securityContext");
            assert_eq!(pod_sc.run_as_non_root, Some(true), "{name}");
            let annotations = d
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.annotations.as_ref())
                .unwrap_or_else(|| panic!("{name}: no pod annotations"));
            assert_eq!(annotations["prometheus.io/scrape"], "true", "{name}");
            assert_eq!(annotations["prometheus.io/path"], "/metrics", "{name}");
            let containers = spec
                .containers
                .iter()
                .chain(spec.init_containers.as_deref().unwrap_or_default());
            for c in containers {
                let at = format!("{name}/{}", c.name);
                let sc = c
                    .security_context
                    .as_ref()
                    .unwrap_or_else(|| panic!("{at}"));
                assert_eq!(sc.run_as_non_root, Some(true), "{at}");
                assert_eq!(sc.run_as_user, Some(65532), "{at}");
                assert_eq!(sc.read_only_root_filesystem, Some(true), "{at}");
                assert_eq!(sc.allow_privilege_escalation, Some(false), "{at}");
                assert_ne!(sc.privileged, Some(true), "{at}");
                let caps = sc.capabilities.as_ref().unwrap_or_else(|| panic!("{at}"));
                assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]), "{at}");
                assert!(caps.add.as_deref().unwrap_or_default().is_empty(), "{at}");
                let seccomp = sc
                    .seccomp_profile
                    .as_ref()
                    .or(pod_sc.seccomp_profile.as_ref())
                    .unwrap_or_else(|| panic!("{at}: no seccompProfile"));
                assert_eq!(seccomp.type_, "RuntimeDefault", "{at}");
                let res = c.resources.as_ref().unwrap_or_else(|| panic!("{at}"));
                for part in [&res.requests, &res.limits] {
                    let part = part.as_ref().unwrap_or_else(|| panic!("{at}: resources"));
                    assert!(
                        part.contains_key("cpu") && part.contains_key("memory"),
                        "{at}"
                    );
                }
                let port = annotations["prometheus.io/port"].parse::<i32>().unwrap();
                assert!(
                    c.ports
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .any(|p| p.container_port == port),
                    "{at}: scrape port {port} is no container port"
                );
            }
        }
    }
}

#[test]
fn rbac_is_least_privilege_without_wildcards() {
    require_helm!();
    for values in [json!({}), custom_values()] {
        let r = Rendered::of(&values);
        let rules = r.rules();
        assert!(!rules.is_empty());
        for (role, _, rule) in &rules {
            let lists = [
                ("verbs", Some(&rule.verbs)),
                ("resources", rule.resources.as_ref()),
                ("apiGroups", rule.api_groups.as_ref()),
                ("resourceNames", rule.resource_names.as_ref()),
            ];
            for (field, list) in lists {
                for item in list.into_iter().flatten() {
                    assert!(!item.contains('*'), "{role}: {field} grants {item:?}");
                }
            }
            assert!(rule.non_resource_urls.is_none(), "{role}: nonResourceURLs");
            // Nothing beyond what the operator needs.
            for verb in &rule.verbs {
                assert!(
                    ["get", "list", "watch", "patch", "update", "create"].contains(&verb.as_str()),
                    "{role}: verb {verb}"
                );
            }
            let resources = rule.resources.as_deref().unwrap_or_default();
            for res in resources {
                assert!(
                    [
                        "stepuppolicies",
                        "stepuppolicies/status",
                        "stepuppolicies/finalizers",
                        "events",
                        "leases"
                    ]
                    .contains(&res.as_str()),
                    "{role}: resource {res}"
                );
                if res.ends_with("/status") || res.ends_with("/finalizers") || res == "events" {
                    assert!(
                        !rule
                            .verbs
                            .iter()
                            .any(|v| v == "get" || v == "list" || v == "watch"),
                        "{role}: {res} needs no reads"
                    );
                }
            }
        }
        let verbs_for = |group: &str, resource: &str| -> BTreeSet<String> {
            rules
                .iter()
                .filter(|(_, _, r)| {
                    r.api_groups
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .any(|g| g == group)
                        && r.resources
                            .as_deref()
                            .unwrap_or_default()
                            .iter()
                            .any(|x| x == resource)
                })
                .flat_map(|(_, _, r)| r.verbs.iter().cloned())
                .collect()
        };
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            verbs_for("stepup.dev", "stepuppolicies"),
            set(&["get", "list", "watch", "patch", "update"])
        );
        for sub in ["stepuppolicies/status", "stepuppolicies/finalizers"] {
            assert_eq!(
                verbs_for("stepup.dev", sub),
                set(&["patch", "update"]),
                "{sub}"
            );
        }
        assert_eq!(verbs_for("", "events"), set(&["create", "patch"]));
        assert_eq!(
            verbs_for("events.k8s.io", "events"),
            set(&["create", "patch"])
        );
        assert_eq!(
            verbs_for("coordination.k8s.io", "leases"),
            set(&["get", "create", "update"])
        );
        // Every binding names a role of this render (same kind, same namespace) and gives
        // it to the operator's ServiceAccount only.
        for o in &r.objs {
            let (meta, role_ref, subjects) = match o {
                Obj::ClusterRoleBinding(b) => (&b.metadata, &b.role_ref, &b.subjects),
                Obj::RoleBinding(b) => (&b.metadata, &b.role_ref, &b.subjects),
                _ => continue,
            };
            let bound = rules.iter().any(|(name, ns, _)| {
                *name == role_ref.name
                    && (role_ref.kind == "ClusterRole") == ns.is_none()
                    && (ns.is_none() || *ns == meta.namespace)
            });
            assert!(
                bound,
                "{:?} binds a missing {} {}",
                meta.name, role_ref.kind, role_ref.name
            );
            let subjects = subjects.as_deref().unwrap_or_default();
            assert_eq!(subjects.len(), 1, "{:?}", meta.name);
            assert_eq!(
                (
                    subjects[0].kind.as_str(),
                    subjects[0].name.as_str(),
                    subjects[0].namespace.as_deref()
                ),
                ("ServiceAccount", "stepup-operator", Some(NAMESPACE))
            );
        }
        // Leases are namespaced to the release, never cluster-wide.
        for (role, ns, rule) in &rules {
            if rule
                .resources
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|r| r == "leases")
            {
                assert_eq!(ns.as_deref(), Some(NAMESPACE), "{role}");
                // Reading and renewing: only the operator's own Lease (its name is the
                // role's, less the suffix; STEPUP_LEASE_NAME in the Deployment).
                if rule.verbs.iter().any(|v| v == "get" || v == "update") {
                    let lease = role.trim_end_matches("-leader-election");
                    assert_eq!(
                        rule.resource_names.as_deref(),
                        Some(&[lease.to_owned()][..]),
                        "{role}"
                    );
                }
            }
        }
    }
}

#[test]
fn values_violating_the_schema_are_refused_by_lint_and_render() {
    require_helm!();
    let bad = [
        (
            "replicas as a string",
            json!({"operator": {"replicas": "two"}}),
        ),
        ("a misspelled key", json!({"operator": {"replcias": 2}})),
        (
            "an unknown pull policy",
            json!({"image": {"pullPolicy": "Sometimes"}}),
        ),
        (
            "authz without a user pool id",
            json!({"aws": {"region": "eu-west-1"},
                   "authz": {"enabled": true, "allowedClientIds": ["c"]}}),
        ),
        (
            "authz without a region",
            json!({"authz": {"enabled": true, "userPoolId": POOL_ID, "allowedClientIds": ["c"]}}),
        ),
        (
            "two operators without leader election",
            json!({"operator": {"replicas": 2, "leaderElection": {"enabled": false}}}),
        ),
        (
            "a malformed IRSA role",
            json!({"operator": {"serviceAccount": {"roleArn": "stepup-role"}}}),
        ),
        (
            "an unknown verification mode",
            json!({"authz": {"verification": "weak"}}),
        ),
    ];
    for (what, values) in bad {
        let (ok, report) = lint(&values, false);
        assert!(
            !ok && has_errors(&report),
            "lint accepted {what}: {report:#}"
        );
        let refused = render(&values).expect_err(&format!("render accepted {what}"));
        assert!(refused.contains("render refused"), "{what}: {refused}");
    }
    let (_, report) = lint(&json!({"operator": {"replicas": "two"}}), false);
    assert!(
        report["errors"].to_string().contains("/operator/replicas"),
        "the refusal names the key: {report:#}"
    );
}

/// The chart ships the repository's CRD unchanged (Helm installs `crds/` before templates).
/// Needs no Helm engine.
#[test]
fn chart_crd_is_the_repository_crd() {
    let chart_crd = chart_dir().join("crds/stepuppolicies.yaml");
    let chart_text = std::fs::read_to_string(&chart_crd).unwrap();
    let docs = yaml_documents(&chart_text);
    assert_eq!(docs.len(), 1, "one CRD in {}", chart_crd.display());
    let crd: CustomResourceDefinition = strict(&docs[0]);
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("stepuppolicies.stepup.dev")
    );
    assert_eq!(crd.spec.group, "stepup.dev");
    assert_eq!(crd.spec.names.kind, "StepUpPolicy");
    assert_eq!(crd.spec.names.plural, "stepuppolicies");
    assert_eq!(crd.spec.scope, "Namespaced");
    let served: Vec<&str> = crd.spec.versions.iter().map(|v| v.name.as_str()).collect();
    assert!(served.contains(&"v1alpha1"), "{served:?}");

    // The repository's crds/ is generated from the Rust types (core/tests/crd.rs); the chart
    // must carry the same text.
    let repo_crd = common::repo("crds/stepuppolicies.yaml");
    let repo_text = std::fs::read_to_string(&repo_crd)
        .unwrap_or_else(|e| panic!("{}: {e}", repo_crd.display()));
    assert!(
        repo_text == chart_text,
        "charts/stepup/crds/stepuppolicies.yaml differs from crds/stepuppolicies.yaml: \
         cp crds/stepuppolicies.yaml charts/stepup/crds/"
    );
}

#[test]
fn rendered_crd_round_trips_and_templates_carry_standard_labels() {
    require_helm!();
    let docs = render(&custom_values()).unwrap();
    let mut crds = 0;
    for doc in &docs {
        if let Obj::Crd(crd) = typed(doc) {
            let file = std::fs::read_to_string(chart_dir().join("crds/stepuppolicies.yaml"));
            let file: CustomResourceDefinition = strict(&yaml_documents(&file.unwrap())[0]);
            assert_eq!(*crd, file, "render carries the chart's CRD unchanged");
            crds += 1;
            continue;
        }
        let labels = &doc["metadata"]["labels"];
        for key in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/component",
            "helm.sh/chart",
        ] {
            assert!(labels[key].is_string(), "{}: label {key}", describe(doc));
        }
        assert_eq!(labels["app.kubernetes.io/instance"], RELEASE);
    }
    assert_eq!(crds, 1, "render includes the CRD once");
}
