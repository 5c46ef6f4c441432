//! The CRD in `crds/` is generated from the Rust types and must stay equal to them
//! (controller-rs keeps its CRD the same way); the example policies must stay valid.

#![cfg(feature = "crd")]

use std::path::PathBuf;
use stepup_core::crd::{crd_yaml, read_manifests, rules_for};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

#[test]
fn the_crd_in_crds_is_the_one_generated_from_the_types() {
    let generated = crd_yaml().unwrap();
    let path = repo("crds/stepuppolicies.yaml");
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == generated,
        "{} differs from the CRD generated from the Rust types; run \
         `cargo run -p stepup-operator -- crd > crds/stepuppolicies.yaml`",
        path.display()
    );
}

#[test]
fn the_crd_declares_the_columns_validations_and_status_subresource() {
    let yaml = crd_yaml().unwrap();
    for needle in [
        "name: stepuppolicies.stepup.dev",
        "- sup",
        "scope: Namespaced",
        "status: {}",
        "jsonPath: .status.syncedRules",
        "x-kubernetes-validations",
        "pattern: ^/",
        "- RequireStepUp",
        "- SoftwareToken",
        "x-kubernetes-list-type: map",
    ] {
        assert!(
            yaml.contains(needle),
            "`{needle}` missing from the CRD:\n{yaml}"
        );
    }
}

#[test]
fn the_example_policies_are_well_formed() {
    let manifests = read_manifests(&repo("examples/policies")).unwrap();
    assert!(manifests.invalid.is_empty(), "{:?}", manifests.invalid);
    assert!(manifests.policies.len() >= 2);
    for loaded in &manifests.policies {
        rules_for(&loaded.policy).unwrap_or_else(|e| panic!("{}: {e}", loaded.source));
    }
}
