//! The `StepUpPolicy` custom resource: the Kubernetes way to declare privileged paths.
//!
//! - the resource types (this file), from which the CRD in `crds/` is generated
//!   ([`crd_yaml`]);
//! - [`manifest`]: reading `StepUpPolicy` objects from YAML files (for `stepup-operator
//!   sync -f`, which needs no cluster);
//! - [`cel_rules`]: the CRD's CEL rules, each with its Rust counterpart;
//! - [`validate`]: every problem of every document of a set of manifests, offline, with
//!   the CRD's own OpenAPI schema, its CEL rules' counterparts and [`rules_for`];
//! - [`plan`]: the pure translation of policies into setting-table items and of the
//!   difference to the table into puts and deletes.
//!
//! The schema validates what the API server can check cheaply (enums, `path` starts with
//! `/`, duration syntax, CEL rules between fields); [`plan::rules_for`] checks everything
//! again, because `sync -f` reads files that never went through an API server.

pub mod cel_rules;
#[cfg(test)]
mod fixtures;
pub mod manifest;
pub mod plan;
pub mod rules;
pub mod validate;

pub use manifest::{LoadedPolicy, ManifestError, Manifests, Problem, read_manifests};
pub use plan::{Plan, PlanOptions, PolicyInput, PolicyMeta, plan_writes};
pub use rules::{PolicyError, rules_for};
pub use validate::{Report, validate};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use kube::core::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kind (the derive below takes literals; a test holds these equal to what it makes).
pub const KIND: &str = "StepUpPolicy";
/// `apiVersion` as written in manifests: the derive's group and version.
pub const API_VERSION: &str = "stepup.dev/v1alpha1";

/// Condition types written to `status.conditions`.
pub mod condition {
    /// Every rule of the policy is in the setting table.
    pub const READY: &str = "Ready";
    /// The last sync of the policy to the setting table succeeded.
    pub const SYNCED: &str = "Synced";
    /// Another policy (or a hand-made item) holds a rule key of this policy.
    pub const CONFLICT: &str = "Conflict";
}

/// Duration syntax of `maxAge`: hours, minutes, seconds in this order, each optional, at
/// least one present (`5m`, `300s`, `1h30m`). Checked again by [`plan::parse_duration`].
pub const DURATION_PATTERN: &str = "^([0-9]+h)?([0-9]+m)?([0-9]+s)?$";

/// Desired state of a `StepUpPolicy`: the rules it puts into the setting table.
// Two printer columns of type string read to clippy as one attribute given twice.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "stepup.dev",
    version = "v1alpha1",
    kind = "StepUpPolicy",
    namespaced,
    shortname = "sup",
    status = "StepUpPolicyStatus",
    derive = "PartialEq",
    doc = "Paths of an API that need a step-up authentication (or are denied or allowed), \
           written by stepup-operator into the stepup setting table.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Rules", type_ = "integer", json_path = ".status.syncedRules"),
    printcolumn(
        name = "Enforcement",
        type_ = "string",
        json_path = ".status.enforcement"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StepUpPolicySpec {
    /// The rules; each becomes one item of the setting table.
    #[schemars(length(min = 1, max = 256), extend("x-kubernetes-list-type" = "set"))]
    pub rules: Vec<PolicyRule>,
    /// `Enforce` (default): the rules' outcomes are answered. `Audit`: report-only, a
    /// request a rule would challenge or deny is allowed, marked, logged and counted (see
    /// docs/rolling-out-a-policy.md).
    #[serde(default)]
    pub enforcement: PolicyEnforcement,
}

/// Whether a policy's rules are enforced or only reported.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PolicyEnforcement {
    /// Challenges and denials are answered.
    #[default]
    Enforce,
    /// Report-only (the setting items say `enforcement: AUDIT`).
    Audit,
}

/// One rule: which requests it governs and what it asks for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
// The CEL rules come from `cel_rules` (each with its Rust counterpart); an atomic map, so
// that `spec.rules` can be a set: the API server refuses a rule written twice.
#[schemars(extend(
    "x-kubernetes-validations" = cel_rules::x_kubernetes_validations(),
    "x-kubernetes-map-type" = "atomic"
))]
pub struct PolicyRule {
    /// The request path (canonicalised before use), or for `Template` a path with
    /// whole-segment `{name}` variables (`/accounts/{id}/transfer`).
    #[schemars(regex(pattern = r"^/"), length(min = 1, max = 1024))]
    pub path: String,
    /// How `path` is compared with the request path.
    #[serde(default, rename = "match")]
    pub match_type: MatchType,
    /// HTTP methods the rule governs (`GET` also governs `HEAD`); empty or `*` means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(regex(pattern = r"^([A-Za-z]+|\*)$")))]
    pub methods: Vec<String>,
    /// Hosts the rule governs (`api.example.com`, `*.example.com`); empty or `*` means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    pub hosts: Vec<String>,
    /// What a governed request needs.
    pub action: RuleAction,
    /// Freshness for `RequireStepUp`: a step-up older than this does not count (`5m`,
    /// `300s`, `1h30m`). Absent: any step-up of the token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = DURATION_PATTERN),
        length(min = 2, max = 32)
    )]
    pub max_age: Option<String>,
    /// Factors accepted in session mode for `RequireStepUp`; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub factors: Vec<FactorName>,
    /// `acr` values accepted in claims mode (RFC 9470; any of them) for `RequireStepUp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 256)))]
    pub acr_values: Vec<String>,
    /// `amr` values accepted in claims mode for `RequireStepUp`: the token's `amr` must
    /// hold at least one of them (with `acrValues` as well, both must hold).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 256)))]
    pub amr_values: Vec<String>,
}

/// How a rule's path is compared with the request path.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum MatchType {
    /// The canonical request path equals the rule's path.
    #[default]
    Exact,
    /// The canonical request path is the rule's path or lies below it, segment by segment.
    Prefix,
    /// The canonical request path matches the template segment by segment.
    Template,
}

/// What a rule asks for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RuleAction {
    /// A step-up is required (`STEP_UP_REQUIRED`).
    RequireStepUp,
    /// Refused whatever the token (`STEP_UP_DENY`).
    Deny,
    /// A valid token is enough (`STEP_UP_NOT_REQUIRED`).
    Allow,
}

/// A second factor, as spelled in a `StepUpPolicy`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum FactorName {
    /// A TOTP software token.
    SoftwareToken,
    /// A code sent by SMS.
    Sms,
}

/// Observed state of a `StepUpPolicy`, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepUpPolicyStatus {
    /// The `metadata.generation` the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Synced` and `Conflict`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Number of the policy's rules in the setting table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_rules: Option<u32>,
    /// When the policy was last written to the setting table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "time_schema")]
    pub last_sync_time: Option<Time>,
    /// The enforcement the policy's items were written with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<PolicyEnforcement>,
}

// k8s-openapi is built without its `schemars` feature, so the two apimachinery types get
// their schemas here (the same as upstream's `metav1.Condition` and `metav1.Time`).
fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "properties": {
                "lastTransitionTime": { "type": "string", "format": "date-time" },
                "message": { "type": "string", "maxLength": 32768 },
                "observedGeneration": { "type": "integer", "format": "int64", "minimum": 0 },
                "reason": { "type": "string", "maxLength": 1024 },
                "status": { "type": "string", "enum": ["True", "False", "Unknown"] },
                "type": { "type": "string", "maxLength": 316 }
            }
        }
    })
}

fn time_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "format": "date-time", "nullable": true })
}

/// The CustomResourceDefinition of `StepUpPolicy` as YAML (what `crds/stepuppolicies.yaml`
/// holds and `stepup-operator crd` prints).
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&StepUpPolicy::crd())
}

impl StepUpPolicy {
    /// `namespace/name`, the `owner` of the policy's items. A policy without namespace is in
    /// `default` (as `kubectl apply` would put it).
    pub fn owner(&self) -> String {
        let ns = self.metadata.namespace.as_deref().unwrap_or("default");
        let name = self.metadata.name.as_deref().unwrap_or("");
        format!("{ns}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    #[test]
    fn the_kind_and_api_version_constants_are_what_the_derive_makes() {
        assert_eq!(StepUpPolicy::kind(&()), KIND);
        assert_eq!(StepUpPolicy::api_version(&()), API_VERSION);
    }
}
