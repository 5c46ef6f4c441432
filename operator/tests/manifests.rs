//! `stepup-operator validate` over a corpus of bad manifests, and the same corpus held to
//! the CRD of `crds/` as the API server would apply it: its `openAPIV3Schema` (checked by
//! the `jsonschema` crate with the API server's structural semantics) and its CEL rules
//! (evaluated by the `cel` interpreter). Every corpus case the validator refuses, the CRD
//! refuses too; the valid examples pass both; every CEL rule of the CRD has a Rust
//! counterpart (`stepup_core::crd::cel_rules`) that answers as the CEL does.
//!
//! `tests/fixtures/invalid/`: refused by both. `tests/fixtures/invalid-beyond-schema/`:
//! what only the validator can see (each file says why); the CRD accepts them, and the
//! test says so, so that a schema that learns to refuse one moves it to `invalid/`.

use crate::common::{examples, repo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use stepup_core::crd::PolicyRule;
use stepup_core::crd::cel_rules::RULE_VALIDATIONS;
use stepup_core::crd::validate::json_schema_of;

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("operator/tests/fixtures").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {dir}");
    files
}

/// The CRD of `crds/`, as the API server would apply it.
struct ApiServer {
    api_version: String,
    kind: String,
    schema: jsonschema::Validator,
    cel: Vec<(String, cel::Program)>,
}

impl ApiServer {
    fn from_crds_file() -> ApiServer {
        let text = std::fs::read_to_string(repo("crds/stepuppolicies.yaml")).unwrap();
        let crd: Value = serde_yaml::from_str(&text).unwrap();
        let version = &crd["spec"]["versions"][0];
        let open_api = &version["schema"]["openAPIV3Schema"];
        let schema = jsonschema::draft7::options()
            .should_validate_formats(false)
            .build(&json_schema_of(open_api))
            .unwrap();
        let rules = open_api
            .pointer("/properties/spec/properties/rules/items/x-kubernetes-validations")
            .and_then(Value::as_array)
            .unwrap();
        let cel = rules
            .iter()
            .map(|r| {
                let text = r["rule"].as_str().unwrap().to_owned();
                let program = cel::Program::compile(&text)
                    .unwrap_or_else(|e| panic!("the CEL rule does not parse: {text}: {e:?}"));
                (text, program)
            })
            .collect();
        ApiServer {
            api_version: format!(
                "{}/{}",
                crd["spec"]["group"].as_str().unwrap(),
                version["name"].as_str().unwrap()
            ),
            kind: crd["spec"]["names"]["kind"].as_str().unwrap().to_owned(),
            schema,
            cel,
        }
    }

    /// `Some(result)` of a CEL rule on one rule object; `None` when it cannot be evaluated
    /// (the API server then refuses the object too).
    fn eval(&self, program: &cel::Program, rule: &Value) -> Option<bool> {
        let mut context = cel::Context::default();
        context.add_variable("self", rule.clone()).unwrap();
        match program.execute(&context) {
            Ok(cel::Value::Bool(b)) => Some(b),
            _ => None,
        }
    }

    /// Why the API server refuses the file's documents, or `None` when it takes them all.
    fn refuses(&self, text: &str) -> Option<String> {
        use serde::Deserialize;
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value = match Value::deserialize(doc) {
                Ok(v) => v,
                Err(e) => return Some(format!("not YAML: {e}")),
            };
            if value.is_null() {
                continue;
            }
            if value["apiVersion"] != self.api_version.as_str()
                || value["kind"] != self.kind.as_str()
            {
                return Some(format!(
                    "no such kind: {} {}",
                    value["apiVersion"], value["kind"]
                ));
            }
            if value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Some("no metadata.name".into());
            }
            if let Some(e) = self.schema.iter_errors(&value).next() {
                return Some(format!("schema: {} at {}", e, e.instance_path()));
            }
            for rule in value["spec"]["rules"].as_array().into_iter().flatten() {
                for (text, program) in &self.cel {
                    if self.eval(program, rule) != Some(true) {
                        return Some(format!("CEL: {text}"));
                    }
                }
            }
        }
        None
    }
}

/// `stepup-operator validate -f <path>`: the exit code and stdout.
fn validate(path: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stepup-operator"))
        .args(["validate", "-f"])
        .arg(path)
        .env_remove("STEPUP_POLICIES")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_refuses_every_corpus_case_naming_file_document_policy_and_field() {
    for file in fixtures("invalid") {
        let (code, stdout, stderr) = validate(&file);
        assert_eq!(code, Some(3), "{}: {stdout}{stderr}", file.display());
        let name = file.file_name().unwrap().to_str().unwrap();
        let error = stdout
            .lines()
            .find(|l| l.contains(name) && !l.ends_with(": valid"))
            .unwrap_or_else(|| panic!("{name}: no error line in\n{stdout}"));
        assert!(error.contains("(document 0)"), "{error}");
        if !["not-yaml.yaml", "no-name.yaml"].contains(&name) {
            assert!(
                error.contains("shop/broken: ") || error.contains("default/broken: "),
                "{error}"
            );
        }
        assert!(
            stdout.lines().last().unwrap().contains("1 invalid"),
            "{stdout}"
        );
        assert!(stderr.is_empty(), "{name}: {stderr}");
    }
}

#[test]
fn each_corpus_case_is_refused_for_its_own_reason() {
    let expect = [
        ("wrong-match.yaml", "spec.rules[0].match: "),
        ("bad-template.yaml", "spec.rules[0].path: a Template path"),
        (
            "template-without-variable.yaml",
            "spec.rules[0].path: a Template path",
        ),
        ("unknown-action.yaml", "spec.rules[0].action: "),
        ("empty-rules.yaml", "spec.rules: "),
        ("duplicate-paths.yaml", "spec.rules: "),
        ("path-without-leading-slash.yaml", "spec.rules[0].path: "),
        (
            "max-age-too-long.yaml",
            "spec.rules[0].maxAge: maxAge must be between 1s and 24h",
        ),
        (
            "max-age-zero.yaml",
            "spec.rules[0].maxAge: maxAge must be between 1s and 24h",
        ),
        ("max-age-not-a-duration.yaml", "spec.rules[0].maxAge: "),
        ("not-yaml.yaml", "(document 0): not valid YAML"),
        (
            "wrong-kind.yaml",
            "kind: `stepup.dev/v1alpha1 StepUpPolicies` is not",
        ),
        ("unknown-field.yaml", "spec.rules[0]: "),
        (
            "step-up-fields-on-allow.yaml",
            "spec.rules[0].action: maxAge, factors",
        ),
        ("no-name.yaml", "metadata.name: StepUpPolicy has no name"),
    ];
    for (name, needle) in expect {
        let (_, stdout, _) = validate(&repo("operator/tests/fixtures/invalid").join(name));
        assert!(
            stdout.contains(needle),
            "{name}: `{needle}` not in\n{stdout}"
        );
    }
    assert_eq!(
        expect.len(),
        fixtures("invalid").len(),
        "a corpus file without its reason here"
    );
    let (_, stdout, _) = validate(&repo("operator/tests/fixtures/invalid/unknown-field.yaml"));
    assert!(
        stdout.contains("maxage"),
        "the unknown field is named: {stdout}"
    );
}

#[test]
fn the_crd_in_crds_refuses_every_corpus_case_the_validator_refuses() {
    let api = ApiServer::from_crds_file();
    for file in fixtures("invalid") {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            api.refuses(&text).is_some(),
            "{}: refused by `stepup-operator validate` but accepted by the CRD",
            file.display()
        );
    }
}

#[test]
fn the_examples_pass_both_the_validator_and_the_crd() {
    let api = ApiServer::from_crds_file();
    for file in std::fs::read_dir(examples()).unwrap() {
        let file = file.unwrap().path();
        if file.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&file).unwrap();
            assert_eq!(api.refuses(&text), None, "{}", file.display());
        }
    }
    let (code, stdout, _) = validate(&examples());
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.ends_with("# 3 documents: 3 valid, 0 invalid (0 errors)\n"),
        "{stdout}"
    );
}

#[test]
fn what_only_the_validator_sees_is_accepted_by_the_crd_and_refused_by_validate() {
    let api = ApiServer::from_crds_file();
    for file in fixtures("invalid-beyond-schema") {
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            api.refuses(&text),
            None,
            "{}: the CRD refuses it now; move it to fixtures/invalid/",
            file.display()
        );
        let (code, stdout, _) = validate(&file);
        assert_eq!(code, Some(3), "{}: {stdout}", file.display());
    }
}

#[test]
fn every_cel_rule_of_the_crd_has_a_counterpart_that_answers_as_the_cel_does() {
    let api = ApiServer::from_crds_file();
    assert_eq!(api.cel.len(), RULE_VALIDATIONS.len());
    // Every rule object of the corpus and the examples that fits the Rust types.
    let mut rules: Vec<Value> = Vec::new();
    let files = fixtures("invalid")
        .into_iter()
        .chain(fixtures("invalid-beyond-schema"))
        .chain(
            ["claims.yaml", "payments.yaml", "transfer.yaml"]
                .iter()
                .map(|f| examples().join(f)),
        );
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        if let Ok(doc) = serde_yaml::from_str::<Value>(&text) {
            rules.extend(doc["spec"]["rules"].as_array().cloned().unwrap_or_default());
        }
    }
    assert!(rules.len() > 15);
    let mut compared = 0;
    for (text, program) in &api.cel {
        let counterpart = RULE_VALIDATIONS
            .iter()
            .find(|c| c.rule == text)
            .unwrap_or_else(|| panic!("no Rust counterpart of the CEL rule {text}"));
        let mut answers = [false; 2];
        for rule in &rules {
            let Ok(typed) = serde_json::from_value::<PolicyRule>(rule.clone()) else {
                continue;
            };
            let Some(cel) = api.eval(program, rule) else {
                continue;
            };
            answers[usize::from(cel)] = true;
            assert_eq!(
                (counterpart.holds)(&typed),
                cel,
                "{}: the counterpart and the CEL disagree on {rule}",
                counterpart.name
            );
            compared += 1;
        }
        assert_eq!(
            answers,
            [true, true],
            "{}: the corpus must both break and keep it",
            counterpart.name
        );
    }
    assert!(compared > 40, "only {compared} comparisons");
}
