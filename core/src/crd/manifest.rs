//! Reading `StepUpPolicy` objects from YAML manifests, as `kubectl apply -f` would.
//!
//! A path is a file or a directory; a directory means every `*.yaml` / `*.yml` file
//! directly in it, in name order. A file may hold several documents (`---`). Documents of
//! other kinds are skipped with a warning (a directory of manifests often holds a
//! Deployment next to the policies); empty documents are ignored.
//!
//! Three kinds of failure are kept apart:
//! - a file or directory that cannot be read is a [`ManifestError`];
//! - a document that is not YAML, or a `StepUpPolicy` without a `metadata.name`, is
//!   [`Manifests::unusable`]: nobody can know which policy it was meant to be, so a sync must
//!   not plan at all (pruning would delete that policy's items);
//! - a `StepUpPolicy` that names itself but does not fit the CRD's schema (an unknown
//!   `action`, an unknown field, a string where a list belongs, a wrong `kind` of our API
//!   group, …; checked by [`super::validate::schema_problems`]) is returned in
//!   [`Manifests::invalid`] with its owner and every problem, so that the plan can treat it
//!   as a malformed policy and keep its items.
//!
//! Documents of other API groups are skipped; a document of the group `stepup.dev` that is
//! not a `StepUpPolicy` of this version is invalid (a typo must not make a policy vanish).

use super::plan::{PolicyInput, PolicyMeta};
use super::rules::PolicyError;
use super::{API_VERSION, KIND, StepUpPolicy};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a document comes from: file and 0-based document index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    /// The file.
    pub file: PathBuf,
    /// The document's index in the file (0-based, counting every `---` document).
    pub document: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.file.display(), self.document)
    }
}

/// A manifest that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file or directory cannot be read.
    #[error("reading {path}: {source}")]
    Io {
        /// the path
        path: PathBuf,
        /// the error
        source: std::io::Error,
    },
    /// A directory without manifests.
    #[error("{0}: no *.yaml or *.yml files")]
    Empty(PathBuf),
}

/// One problem of a document: the field it is about (`spec.rules[0].maxAge`; empty for
/// the document as a whole) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field path, `.`-separated with `[i]` for list items.
    pub field: String,
    /// Why.
    pub reason: String,
}

impl Problem {
    /// A problem of `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

/// A document no policy can be told from (not YAML, or a `StepUpPolicy` without a name).
#[derive(Debug, Clone)]
pub struct UnusableDocument {
    /// Where it comes from.
    pub source: Source,
    /// What is wrong.
    pub problems: Vec<Problem>,
}

impl fmt::Display for UnusableDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.source)?;
        write_problems(f, &self.problems)
    }
}

/// The string at `v`, if it is one.
fn text_of(v: Option<&serde_yaml::Value>) -> Option<&str> {
    v.and_then(serde_yaml::Value::as_str)
}

/// `a; b; c`.
pub(crate) fn write_problems(f: &mut fmt::Formatter<'_>, problems: &[Problem]) -> fmt::Result {
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            f.write_str("; ")?;
        }
        write!(f, "{p}")?;
    }
    Ok(())
}

/// A policy read from a manifest.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// Where it comes from.
    pub source: Source,
    /// The object.
    pub policy: StepUpPolicy,
}

/// A `StepUpPolicy` document that names itself but does not fit the schema.
#[derive(Debug, Clone)]
pub struct InvalidPolicy {
    /// Where it comes from.
    pub source: Source,
    /// `namespace/name`.
    pub owner: String,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

/// What a set of manifests holds.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// The policies, in file and document order.
    pub policies: Vec<LoadedPolicy>,
    /// `StepUpPolicy` documents that do not fit the schema.
    pub invalid: Vec<InvalidPolicy>,
    /// Documents no policy can be told from: a sync must not plan with them around.
    pub unusable: Vec<UnusableDocument>,
    /// Documents of other kinds that were skipped, one description each.
    pub skipped: Vec<String>,
}

impl Manifests {
    /// The plan's input: every policy ([`PolicyInput::of`]); an invalid document and a
    /// policy defined a second time (same `namespace/name`) are malformed policies.
    pub fn to_inputs(&self) -> Vec<PolicyInput> {
        let mut out: Vec<PolicyInput> = Vec::new();
        let mut seen: Vec<(String, &Source)> = Vec::new();
        for loaded in &self.policies {
            let owner = loaded.policy.owner();
            if let Some((_, first)) = seen.iter().find(|(o, _)| *o == owner) {
                let err = PolicyError {
                    policy: owner.clone(),
                    problems: vec![format!(
                        "{} defines it again (first in {first})",
                        loaded.source
                    )],
                };
                if let Some(input) = out.iter_mut().find(|i| i.meta.owner == owner) {
                    duplicates_note(input, err);
                }
                continue;
            }
            seen.push((owner, &loaded.source));
            out.push(PolicyInput::of(&loaded.policy));
        }
        for bad in &self.invalid {
            // A second definition whether or not it is valid (as `validate` counts it): the
            // policy is malformed, never written from the one that happens to parse.
            if let Some(input) = out.iter_mut().find(|i| i.meta.owner == bad.owner) {
                let again = format!("{} defines it again, invalid", bad.source);
                let err = PolicyError {
                    policy: bad.owner.clone(),
                    problems: vec![again],
                };
                duplicates_note(input, err);
                continue;
            }
            out.push(PolicyInput {
                meta: PolicyMeta {
                    owner: bad.owner.clone(),
                    uid: None,
                    generation: None,
                    created: None,
                },
                rules: Err(PolicyError {
                    policy: bad.owner.clone(),
                    problems: bad
                        .problems
                        .iter()
                        .map(|p| format!("{}: {p}", bad.source))
                        .collect(),
                }),
            });
        }
        out
    }
}

/// A policy defined twice is treated as malformed as a whole: which definition the author
/// meant is unknown, and a malformed policy keeps its items as they are.
fn duplicates_note(input: &mut PolicyInput, err: PolicyError) {
    match &mut input.rules {
        Err(existing) => existing.problems.extend(err.problems),
        Ok(_) => input.rules = Err(err),
    }
}

/// Reads every `StepUpPolicy` of a file or of the `*.yaml`/`*.yml` files of a directory.
/// Skipped documents are also logged as warnings.
pub fn read_manifests(path: &Path) -> Result<Manifests, ManifestError> {
    let io = |e| ManifestError::Io {
        path: path.to_owned(),
        source: e,
    };
    let files = if std::fs::metadata(path).map_err(io)?.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?
            .into_iter()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension().is_some_and(|e| {
                        e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml")
                    })
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ManifestError::Empty(path.to_owned()));
        }
        files
    } else {
        vec![path.to_owned()]
    };
    let mut out = Manifests::default();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| ManifestError::Io {
            path: file.clone(),
            source: e,
        })?;
        read_documents(&file, &text, &mut out)?;
    }
    Ok(out)
}

/// Reads the documents of one file's text (`file` only names it in messages). A document
/// that is not YAML ends the file: the parser cannot tell where the next one starts.
pub fn read_documents(file: &Path, text: &str, out: &mut Manifests) -> Result<(), ManifestError> {
    use serde::Deserialize;
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let source = Source {
            file: file.to_owned(),
            document: index,
        };
        let value = match serde_yaml::Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                out.unusable.push(UnusableDocument {
                    source,
                    problems: vec![Problem::new("", format!("not valid YAML: {e}"))],
                });
                break;
            }
        };
        if value.is_null() {
            continue;
        }
        let kind = text_of(value.get("kind"));
        let api_version = text_of(value.get("apiVersion"));
        let group = api_version.and_then(|v| v.split_once('/')).map(|(g, _)| g);
        let ours = group == API_VERSION.split_once('/').map(|(g, _)| g) || kind == Some(KIND);
        if !ours {
            let what = format!(
                "{source}: skipped {} {}",
                api_version.unwrap_or("<no apiVersion>"),
                kind.unwrap_or("<no kind>")
            );
            tracing::warn!("{what}");
            out.skipped.push(what);
            continue;
        }
        let metadata = value.get("metadata");
        let field = |name: &str| text_of(metadata.and_then(|m| m.get(name))).map(str::to_owned);
        let Some(name) = field("name").filter(|n| !n.is_empty()) else {
            out.unusable.push(UnusableDocument {
                source,
                problems: vec![Problem::new(
                    "metadata.name",
                    format!("{} has no name", kind.unwrap_or(KIND)),
                )],
            });
            continue;
        };
        let owner = format!(
            "{}/{name}",
            field("namespace").unwrap_or_else(|| "default".into())
        );
        let mut problems = Vec::new();
        if kind != Some(KIND) || api_version != Some(API_VERSION) {
            problems.push(Problem::new(
                "kind",
                format!(
                    "`{} {}` is not `{API_VERSION} {KIND}`",
                    api_version.unwrap_or("<no apiVersion>"),
                    kind.unwrap_or("<no kind>")
                ),
            ));
        }
        problems.extend(super::validate::schema_problems(&value));
        if problems.is_empty() {
            match serde_yaml::from_value::<StepUpPolicy>(value) {
                Ok(policy) => {
                    out.policies.push(LoadedPolicy { source, policy });
                    continue;
                }
                Err(e) => problems.push(Problem::new("spec", e.to_string())),
            }
        }
        out.invalid.push(InvalidPolicy {
            source,
            owner,
            problems,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::RuleAction;

    fn read(text: &str) -> Result<Manifests, ManifestError> {
        let mut out = Manifests::default();
        read_documents(Path::new("p.yaml"), text, &mut out)?;
        Ok(out)
    }

    const TWO: &str = "\
apiVersion: stepup.dev/v1alpha1
kind: StepUpPolicy
metadata: {name: a, namespace: shop}
spec:
  rules:
    - {path: /transfer, action: RequireStepUp}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
---
apiVersion: stepup.dev/v1alpha1
kind: StepUpPolicy
metadata: {name: b}
spec:
  rules:
    - {path: /admin, match: Prefix, action: Deny}
";

    #[test]
    fn several_documents_are_read_and_other_kinds_skipped() {
        let m = read(TWO).unwrap();
        let owners: Vec<String> = m.policies.iter().map(|p| p.policy.owner()).collect();
        assert_eq!(owners, vec!["shop/a", "default/b"]);
        assert_eq!(m.policies[1].source.document, 3);
        assert_eq!(m.policies[1].policy.spec.rules[0].action, RuleAction::Deny);
        assert_eq!(m.skipped, vec!["p.yaml (document 1): skipped v1 ConfigMap"]);
        assert!(m.to_inputs().iter().all(|i| i.rules.is_ok()));
    }

    #[test]
    fn a_policy_that_does_not_fit_the_schema_becomes_a_malformed_input() {
        let m = read(
            "apiVersion: stepup.dev/v1alpha1\nkind: StepUpPolicy\nmetadata: {name: x}\n\
             spec: {rules: [{path: /a, action: Require}]}\n",
        )
        .unwrap();
        assert!(m.policies.is_empty());
        assert_eq!(m.invalid[0].owner, "default/x");
        let inputs = m.to_inputs();
        let err = inputs[0].rules.as_ref().unwrap_err();
        assert!(
            err.problems[0].starts_with("p.yaml (document 0): "),
            "{err}"
        );
        assert!(err.problems[0].contains("Require"), "{err}");
    }

    #[test]
    fn bad_yaml_and_nameless_policies_are_unusable_with_file_and_document() {
        let m = read("a: b\n---\n: : [\n").unwrap();
        assert_eq!(m.unusable.len(), 1);
        assert!(
            m.unusable[0]
                .to_string()
                .starts_with("p.yaml (document 1): not valid YAML"),
            "{}",
            m.unusable[0]
        );
        let m = read("apiVersion: stepup.dev/v1alpha1\nkind: StepUpPolicy\nspec: {rules: []}\n")
            .unwrap();
        assert_eq!(
            m.unusable[0].to_string(),
            "p.yaml (document 0): metadata.name: StepUpPolicy has no name"
        );
    }

    #[test]
    fn a_wrong_kind_of_our_group_is_invalid_and_other_groups_are_skipped() {
        let m = read(
            "apiVersion: stepup.dev/v1alpha1\nkind: StepUpPolicies\nmetadata: {name: x}\n\
             spec: {rules: [{path: /a, action: Deny}]}\n",
        )
        .unwrap();
        assert_eq!(m.invalid[0].owner, "default/x");
        assert_eq!(m.invalid[0].problems[0].field, "kind");
        assert!(m.skipped.is_empty());
    }

    #[test]
    fn a_policy_defined_twice_is_malformed() {
        let doc = "apiVersion: stepup.dev/v1alpha1\nkind: StepUpPolicy\nmetadata: {name: a}\n\
                   spec: {rules: [{path: /a, action: Deny}]}\n";
        let m = read(&format!("{doc}---\n{doc}")).unwrap();
        let inputs = m.to_inputs();
        assert_eq!(inputs.len(), 1);
        let err = inputs[0].rules.as_ref().unwrap_err();
        assert!(err.problems[0].contains("defines it again"), "{err}");
        // The same when the second definition does not even fit the schema: the valid one
        // is not written on its own.
        let invalid = "apiVersion: stepup.dev/v1alpha1\nkind: StepUpPolicy\nmetadata: {name: a}\n\
                       spec: {rules: [{path: /a, action: Explode}]}\n";
        for both in [
            format!("{doc}---\n{invalid}"),
            format!("{invalid}---\n{doc}"),
        ] {
            let inputs = read(&both).unwrap().to_inputs();
            assert_eq!(inputs.len(), 1, "{both}");
            let err = inputs[0].rules.as_ref().unwrap_err();
            assert!(err.to_string().contains("defines it again"), "{err}");
        }
    }

    #[test]
    fn a_directory_is_its_yaml_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let doc = |name: &str| {
            format!(
                "apiVersion: stepup.dev/v1alpha1\nkind: StepUpPolicy\nmetadata: {{name: {name}}}\n\
                 spec: {{rules: [{{path: /{name}, action: Deny}}]}}\n"
            )
        };
        std::fs::write(dir.path().join("b.yml"), doc("b")).unwrap();
        std::fs::write(dir.path().join("a.yaml"), doc("a")).unwrap();
        std::fs::write(dir.path().join("c.txt"), doc("c")).unwrap();
        let m = read_manifests(dir.path()).unwrap();
        let owners: Vec<String> = m.policies.iter().map(|p| p.policy.owner()).collect();
        assert_eq!(owners, vec!["default/a", "default/b"]);
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_manifests(empty.path()),
            Err(ManifestError::Empty(_))
        ));
        assert!(matches!(
            read_manifests(&dir.path().join("missing.yaml")),
            Err(ManifestError::Io { .. })
        ));
    }
}
