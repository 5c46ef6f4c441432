"""Lint and render a Helm chart offline with the Helm v4 SDK (PyPI helm-python-sdk).

Run through scripts/helm.sh, which installs the engine and puts it on PYTHONPATH:

    helm_render.py lint CHART [VALUES.json] [--strict] [--kube-version vX.Y.Z]
    helm_render.py render CHART VALUES.json RELEASE NAMESPACE OUTDIR [--kube-version vX.Y.Z]

lint prints Helm's report as JSON ({"total_charts_linted", "messages": [{"severity",
"path", "error"}], "errors": [...]}) and exits 1 when "errors" is not empty. Helm's lint only
checks the values against values.schema.json as one of its findings, so lint also validates
the values explicitly and adds a refusal to "errors".

render validates the values against values.schema.json (exit 1 and the reason on stderr when
they are refused), renders every template as `helm template --include-crds` would, and writes
  OUTDIR/<template path>     one file per template that produced a manifest (same relative
                             path as in the chart, e.g. stepup/templates/deployment.yaml;
                             NOTES.txt included as text),
  OUTDIR/<chart>/crds/<file> the chart's CRDs, unchanged,
  OUTDIR/all.yaml            every manifest and CRD as one multi-document YAML stream,
and prints the list of written files as JSON on stdout.

An empty VALUES.json argument ("") means: the chart's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

import helm_python as helm

# Kubernetes version the chart is linted against (capabilities in templates, API checks).
DEFAULT_KUBE_VERSION = "v1.33.0"


def load_values(path: str) -> dict[str, Any] | None:
    """The values in a JSON file, or None (chart defaults) for an empty path."""
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    if not isinstance(values, dict):
        raise SystemExit(f"{path}: values must be a JSON object")
    return values


def is_blank_manifest(text: str) -> bool:
    """True when a rendered template holds no YAML document (only blanks, comments, ---)."""
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#") and s != "---":
            return False
    return True


def safe_relpath(name: str) -> str:
    """A template or CRD name as a relative path that cannot leave OUTDIR."""
    parts = [p for p in re.split(r"[\\/]+", name) if p not in ("", ".", "..")]
    if not parts:
        raise SystemExit(f"refusing odd template name {name!r}")
    return os.path.join(*parts)


def cmd_lint(args: argparse.Namespace) -> int:
    values = load_values(args.values)
    report = helm.lint(
        args.chart,
        values,
        strict=args.strict,
        kube_version=args.kube_version,
    )
    report.setdefault("errors", [])
    report["errors"] = list(report["errors"] or [])
    try:
        helm.Chart.load(args.chart).validate_schema(values)
    except helm.HelmError as e:
        msg = f"values don't meet the specifications of the schema: {e}"
        if not any("schema" in str(x) for x in report["errors"]):
            report["errors"].append(msg)
    print(json.dumps(report, indent=1))
    return 1 if report["errors"] else 0


def cmd_render(args: argparse.Namespace) -> int:
    values = load_values(args.values)
    chart = helm.Chart.load(args.chart)
    try:
        chart.validate_schema(values)
        rendered = chart.render(
            values, name=args.release, namespace=args.namespace, is_install=True
        )
    except helm.HelmError as e:
        print(f"render refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1

    os.makedirs(args.outdir, exist_ok=True)
    written: list[str] = []
    docs: list[str] = []

    def write(rel: str, text: str) -> None:
        path = os.path.join(args.outdir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        written.append(rel)

    for crd in sorted(chart.crds, key=lambda c: c["name"]):
        rel = safe_relpath(os.path.join(chart.name, "crds", os.path.basename(crd["filename"])))
        write(rel, crd["data"])
        docs.append(f"# Source: {rel}\n{crd['data'].strip()}\n")

    for name in sorted(rendered):
        text = rendered[name]
        if is_blank_manifest(text):
            continue
        rel = safe_relpath(name)
        write(rel, text)
        if name.endswith(".txt"):  # NOTES.txt: text for the user, not a manifest
            continue
        docs.append(f"# Source: {rel}\n{text.strip()}\n")

    write("all.yaml", "---\n".join(docs))
    print(json.dumps(written, indent=1))
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="helm_render.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    lint = sub.add_parser("lint", help="lint a chart; exit 1 on errors")
    lint.add_argument("chart")
    lint.add_argument("values", nargs="?", default="")
    lint.add_argument("--strict", action="store_true", help="warnings count as errors")
    lint.add_argument("--kube-version", default=DEFAULT_KUBE_VERSION)
    render = sub.add_parser("render", help="render a chart into files")
    render.add_argument("chart")
    render.add_argument("values")
    render.add_argument("release")
    render.add_argument("namespace")
    render.add_argument("outdir")
    args = p.parse_args(argv)
    return cmd_lint(args) if args.cmd == "lint" else cmd_render(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
