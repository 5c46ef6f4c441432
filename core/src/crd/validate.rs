//! Offline validation of `StepUpPolicy` manifests (`stepup-operator validate`, and `sync`
//! before it touches AWS): every problem of every document, with its file, document index,
//! policy and field path.
//!
//! A document is checked as the API server would check it, from the same sources:
//!
//! 1. the envelope: `apiVersion` / `kind` ([`super::manifest`]) and `metadata.name`;
//! 2. the CRD's own OpenAPI schema ([`schema_problems`]): the `openAPIV3Schema` of
//!    [`super::StepUpPolicy::crd`], read with Kubernetes' structural-schema semantics —
//!    `nullable`, unknown fields refused (what `kubectl apply` does with its default
//!    `--validate=strict`), `x-kubernetes-list-type: set` items unique — and checked by
//!    the `jsonschema` crate;
//! 3. the CRD's CEL rules, through their Rust counterparts ([`super::cel_rules`]), and
//!    what no schema can say (canonical paths, rule keys shared by two rules, host
//!    patterns, claim values): [`super::rules_for`];
//! 4. across documents: a policy defined twice.

use super::manifest::{Manifests, Problem, Source, write_problems};
use super::{StepUpPolicy, rules_for};
use kube::core::CustomResourceExt;
use serde_json::{Value, json};
use std::fmt;
use std::sync::LazyLock;

/// The CRD's schema as a JSON Schema validator, built once (an `Err` only if the generated
/// schema is broken, which the tests rule out).
static SCHEMA: LazyLock<Result<jsonschema::Validator, String>> = LazyLock::new(|| {
    let crd = serde_json::to_value(StepUpPolicy::crd()).map_err(|e| e.to_string())?;
    let open_api = crd
        .pointer("/spec/versions/0/schema/openAPIV3Schema")
        .ok_or("the CRD has no openAPIV3Schema")?;
    let schema = json_schema_of(open_api);
    jsonschema::draft7::options()
        .should_validate_formats(false)
        .build(&schema)
        .map_err(|e| e.to_string())
});

/// A CRD version's `openAPIV3Schema` as a JSON Schema (draft 7) of a whole manifest, with
/// the API server's semantics ([`structural`]) and its checks of the envelope
/// (`apiVersion`, `kind`, `metadata.name` and `namespace` syntax).
pub fn json_schema_of(open_api: &Value) -> Value {
    let mut schema = open_api.clone();
    structural(&mut schema);
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("apiVersion".into(), json!({"type": "string"}));
        props.insert("kind".into(), json!({"type": "string"}));
        props.insert("metadata".into(), metadata_schema());
    }
    schema
}

/// What the API server checks of `metadata` that a manifest can get wrong.
fn metadata_schema() -> Value {
    let dns_subdomain = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
    let dns_label = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 253, "pattern": dns_subdomain},
            "namespace": {"type": "string", "maxLength": 63, "pattern": dns_label}
        }
    })
}

/// An OpenAPI v3 schema of a CRD as JSON Schema with the API server's semantics:
/// `nullable` admits `null`, an object with `properties` admits no other field, and a
/// `set` list admits no item twice.
fn structural(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(t)) = obj.get("type").cloned()
    {
        obj.insert("type".into(), json!([t, "null"]));
    }
    if obj.contains_key("properties")
        && !obj.contains_key("additionalProperties")
        && !obj.contains_key("x-kubernetes-preserve-unknown-fields")
    {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    if obj.get("x-kubernetes-list-type") == Some(&json!("set")) {
        obj.insert("uniqueItems".into(), Value::Bool(true));
    }
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(structural);
    }
    if let Some(items) = obj.get_mut("items") {
        structural(items);
    }
}

/// `/spec/rules/0/maxAge` → `spec.rules[0].maxAge`.
fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg.replace("~1", "/").replace("~0", "~"));
        }
    }
    out
}

/// The problems the CRD's OpenAPI schema finds in a document (see the module doc).
pub fn schema_problems(document: &serde_yaml::Value) -> Vec<Problem> {
    let validator = match SCHEMA.as_ref() {
        Ok(v) => v,
        Err(e) => {
            return vec![Problem::new(
                "",
                format!("the CRD's schema is unusable: {e}"),
            )];
        }
    };
    let json = match serde_json::to_value(document) {
        Ok(j) => j,
        Err(e) => return vec![Problem::new("", format!("not a JSON-like document: {e}"))],
    };
    validator
        .iter_errors(&json)
        .map(|e| Problem::new(field_path(e.instance_path().as_str()), e.to_string()))
        .collect()
}

/// One `rules_for` problem (`rules[1].maxAge: why`) as a [`Problem`] of the document.
fn problem_of(text: &str) -> Problem {
    match text.split_once(": ") {
        Some((field, reason)) if !field.contains(' ') => {
            let field = if field.starts_with("rules[") {
                format!("spec.{field}")
            } else {
                field.to_owned()
            };
            Problem::new(field, reason)
        }
        _ => Problem::new("", text),
    }
}

/// What validation found in one document.
#[derive(Debug, Clone)]
pub struct DocumentReport {
    /// File and document index.
    pub source: Source,
    /// `namespace/name`, when the document names a policy.
    pub policy: Option<String>,
    /// Every problem; empty: the document is a valid policy.
    pub problems: Vec<Problem>,
}

impl fmt::Display for DocumentReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(p) = &self.policy {
            write!(f, " {p}")?;
        }
        if self.problems.is_empty() {
            write!(f, ": valid")
        } else {
            f.write_str(": ")?;
            write_problems(f, &self.problems)
        }
    }
}

/// What validation found in a set of manifests.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every `StepUpPolicy` document (and every unreadable one), in file and document order.
    pub documents: Vec<DocumentReport>,
    /// Documents of other API groups, skipped.
    pub skipped: Vec<String>,
}

impl Report {
    /// The number of problems.
    pub fn error_count(&self) -> usize {
        self.documents.iter().map(|d| d.problems.len()).sum()
    }

    /// No document has a problem.
    pub fn is_valid(&self) -> bool {
        self.error_count() == 0
    }

    /// The documents with problems.
    pub fn invalid(&self) -> impl Iterator<Item = &DocumentReport> {
        self.documents.iter().filter(|d| !d.problems.is_empty())
    }

    /// `2 documents: 1 valid, 1 invalid (3 errors)`.
    pub fn summary(&self) -> String {
        let n = self.documents.len();
        let bad = self.invalid().count();
        let errors = self.error_count();
        format!(
            "{}: {} valid, {bad} invalid ({})",
            plural(n, "document", "documents"),
            n - bad,
            plural(errors, "error", "errors")
        )
    }
}

/// `1 policy`, `2 policies`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Validates every document of `manifests` (see the module doc).
pub fn validate(manifests: &Manifests) -> Report {
    let mut documents: Vec<DocumentReport> = Vec::new();
    for u in &manifests.unusable {
        documents.push(DocumentReport {
            source: u.source.clone(),
            policy: None,
            problems: u.problems.clone(),
        });
    }
    for bad in &manifests.invalid {
        documents.push(DocumentReport {
            source: bad.source.clone(),
            policy: Some(bad.owner.clone()),
            problems: bad.problems.clone(),
        });
    }
    for loaded in &manifests.policies {
        let problems = match rules_for(&loaded.policy) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.iter().map(|p| problem_of(p)).collect(),
        };
        documents.push(DocumentReport {
            source: loaded.source.clone(),
            policy: Some(loaded.policy.owner()),
            problems,
        });
    }
    documents.sort_by(|a, b| a.source.cmp(&b.source));
    let mut first: Vec<(String, Source)> = Vec::new();
    for doc in &mut documents {
        let Some(owner) = doc.policy.clone() else {
            continue;
        };
        match first.iter().find(|(o, _)| *o == owner) {
            Some((_, at)) => doc.problems.push(Problem::new(
                "metadata.name",
                format!("`{owner}` is defined again (first in {at})"),
            )),
            None => first.push((owner, doc.source.clone())),
        }
    }
    Report {
        documents,
        skipped: manifests.skipped.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::manifest::read_documents;
    use std::path::Path;

    fn report(text: &str) -> Report {
        let mut m = Manifests::default();
        read_documents(Path::new("p.yaml"), text, &mut m).unwrap();
        validate(&m)
    }

    const HEAD: &str = "apiVersion: stepup.dev/v1alpha1\nkind: StepUpPolicy\nmetadata: {name: a}\n";

    #[test]
    fn the_generated_schema_builds() {
        assert!(SCHEMA.is_ok(), "{:?}", SCHEMA.as_ref().err());
    }

    #[test]
    fn field_paths_read_like_kubectls() {
        assert_eq!(field_path("/spec/rules/0/maxAge"), "spec.rules[0].maxAge");
        assert_eq!(field_path(""), "");
    }

    #[test]
    fn every_problem_names_its_field_and_a_valid_policy_has_none() {
        let r = report(&format!(
            "{HEAD}spec:\n  rules:\n    - {{path: /a, action: Require}}\n    - {{path: b, action: Deny, maxage: 5m}}\n"
        ));
        let fields: Vec<&str> = r.documents[0]
            .problems
            .iter()
            .map(|p| p.field.as_str())
            .collect();
        assert!(fields.contains(&"spec.rules[0].action"), "{fields:?}");
        assert!(fields.contains(&"spec.rules[1].path"), "{fields:?}");
        assert!(
            fields.contains(&"spec.rules[1]"),
            "unknown field: {fields:?}"
        );
        assert_eq!(r.documents[0].policy.as_deref(), Some("default/a"));
        assert!(!r.is_valid());

        let ok = report(&format!(
            "{HEAD}spec: {{rules: [{{path: /a, action: Deny}}]}}\n"
        ));
        assert!(ok.is_valid(), "{}", ok.documents[0]);
        assert_eq!(ok.summary(), "1 document: 1 valid, 0 invalid (0 errors)");
    }

    #[test]
    fn beyond_the_schema_the_cel_counterparts_and_rules_for_report_with_fields() {
        let r = report(&format!(
            "{HEAD}spec:\n  rules:\n    - {{path: /a, action: RequireStepUp, maxAge: 0s}}\n    - {{path: /a/, action: Deny}}\n"
        ));
        let problems: Vec<String> = r.documents[0]
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert!(
            problems[0].starts_with("spec.rules[0].maxAge: maxAge must be between"),
            "{problems:?}"
        );
        assert!(problems[1].starts_with("spec.rules[1]: "), "{problems:?}");
    }

    #[test]
    fn a_policy_defined_twice_is_reported_on_the_second() {
        let doc = format!("{HEAD}spec: {{rules: [{{path: /a, action: Deny}}]}}\n");
        let r = report(&format!("{doc}---\n{doc}"));
        assert!(r.documents[0].problems.is_empty());
        assert!(r.documents[1].problems[0].reason.contains("defined again"));
    }
}
