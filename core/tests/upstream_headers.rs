//! Every configuration the project ships that tells Envoy or Istio which headers to copy
//! from an allowed check to the upstream names all of [`UPSTREAM_HEADERS`]: a header left
//! off such a list reaches the upstream as the client sent it (HTTP mode copies only the
//! listed ones, and nothing overwrites the client's value).

use stepup_core::decision::UPSTREAM_HEADERS;

fn repo(path: &str) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

#[test]
fn every_shipped_upstream_header_list_names_all_of_them() {
    for (path, marker) in [
        (
            "examples/istio/mesh-config.yaml",
            "headersToUpstreamOnAllow:",
        ),
        (
            "charts/stepup/templates/NOTES.txt",
            "headersToUpstreamOnAllow:",
        ),
        (
            "examples/envoy/envoy-http.yaml",
            "allowed_upstream_headers:",
        ),
    ] {
        let text = repo(path);
        // The list: the rest of the marker's line and the next two.
        let lists: Vec<String> = text
            .split(marker)
            .skip(1)
            .map(|rest| rest.lines().take(3).collect::<Vec<_>>().join("\n"))
            .collect();
        assert!(!lists.is_empty(), "{path}: no `{marker}` list");
        for list in lists {
            for header in UPSTREAM_HEADERS {
                assert!(
                    list.contains(header),
                    "{path}: `{header}` missing from {list}"
                );
            }
        }
    }
}
