//! `stepup-operator validate -f <dir|file>`: checks `StepUpPolicy` manifests offline —
//! no cluster, no AWS — as the API server would with the CRD, and more
//! ([`stepup_core::crd::validate`]): one line per document, `valid` or every problem with
//! its field path, then a summary. Exits [`crate::EXIT_POLICY_PROBLEMS`] when any document
//! has a problem.

use crate::Result;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use stepup_core::crd::{Report, read_manifests, validate};

/// Arguments of `validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// A manifest file, or a directory whose *.yaml / *.yml files are read.
    #[arg(short = 'f', long = "filename", env = "STEPUP_POLICIES")]
    pub path: PathBuf,
}

/// Reads and validates the manifests, printing the report to `out`.
pub fn run(args: &ValidateArgs, out: &mut dyn Write) -> Result<Report> {
    let manifests = read_manifests(&args.path)?;
    let report = validate(&manifests);
    for skipped in &report.skipped {
        writeln!(out, "# {skipped}")?;
    }
    for doc in &report.documents {
        if doc.problems.is_empty() {
            writeln!(out, "{doc}")?;
        } else {
            for problem in &doc.problems {
                let policy = doc
                    .policy
                    .as_deref()
                    .map(|p| format!(" {p}"))
                    .unwrap_or_default();
                writeln!(out, "{}{policy}: {problem}", doc.source)?;
            }
        }
    }
    writeln!(out, "# {}", report.summary())?;
    Ok(report)
}
