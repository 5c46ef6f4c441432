#!/usr/bin/env bash
# The Helm v4 engine as a library, for the chart tests (operator/tests/chart.rs) and for
# linting or rendering charts/stepup by hand. PyPI `helm-python-sdk` bundles libhelm_c.so (the
# Helm Go SDK compiled to a C ABI) with ctypes bindings: no `helm` binary, no Go, nothing to
# start; lint and render run offline, in-process.
#
#   scripts/helm.sh install        # idempotent, into $INFRA_CACHE/helm/<version>/site;
#                                  # prints HELM_PYTHONPATH=...
#   scripts/helm.sh env            # installs if needed, prints HELM_PYTHONPATH=..., HELM_C_LIB=...
#   scripts/helm.sh lint CHART [VALUES.json] [--strict]
#                                  # JSON lint report on stdout; exit 1 when it has errors
#   scripts/helm.sh render CHART VALUES.json RELEASE NAMESPACE OUTDIR
#                                  # one file per rendered template under OUTDIR (same relative
#                                  # path as in the chart) plus OUTDIR/all.yaml (multi-document);
#                                  # exit 1 when the values or a template are refused
#   scripts/helm.sh python ARGS... # python3 with helm_python importable
#
# The lint/render logic lives in scripts/helm_render.py (testable on its own). Needs python3
# with pip (install only). HELM_PYTHON_SDK_VERSION picks another version.
COMPONENT=helm
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"

VERSION="${HELM_PYTHON_SDK_VERSION:-0.2.2}"
DIR="$INFRA_CACHE/$COMPONENT/$VERSION"
SITE="$DIR/site"

do_install() {
  if [ -f "$DIR/.installed" ]; then return 0; fi
  need_pip
  rm -rf "$DIR"
  mkdir -p "$DIR"
  log "pip install --target (no venv) helm-python-sdk==$VERSION"
  # --no-deps --only-binary: the manylinux wheel only, nothing is built or run from it.
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps \
    --only-binary=:all: --target "$SITE" "helm-python-sdk==$VERSION" >&2 \
    || { rm -rf "$DIR"; die "pip install helm-python-sdk==$VERSION failed"; }
  # The wheel carries three identical ~85 MB copies of the library (.so, .so.N, .so.N.N.N):
  # keep the fully versioned one and make the other two symlinks to it.
  local lib="$SITE/helm_python/lib" real f
  real="$(ls "$lib"/libhelm_c.so.*.*.* 2>/dev/null | head -1)"
  [ -n "$real" ] || { rm -rf "$DIR"; die "no libhelm_c.so.X.Y.Z in the wheel"; }
  for f in "$lib/libhelm_c.so" "$lib"/libhelm_c.so.[0-9]; do
    if [ -f "$f" ] && [ ! -L "$f" ] && cmp -s "$f" "$real"; then
      ln -sf "$(basename "$real")" "$f"
    fi
  done
  PYTHONPATH="$SITE" python3 -c \
    'import helm_python as h; print("helm-c", h.helm_c_version(), "/ Helm SDK", h.helm_sdk_version())' >&2 \
    || { rm -rf "$DIR"; die "helm_python does not import"; }
  touch "$DIR/.installed"
  log "installed in $SITE ($(du -sh "$DIR" | cut -f1))"
}

py() { PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" python3 "$@"; }

case "${1:-}" in
  install)
    with_install_lock do_install
    echo "HELM_PYTHONPATH=$SITE" ;;
  env)
    with_install_lock do_install
    echo "HELM_PYTHONPATH=$SITE"
    echo "HELM_C_LIB=$(ls "$SITE"/helm_python/lib/libhelm_c.so.*.*.*)" ;;
  lint)
    with_install_lock do_install
    shift
    py "$HERE/helm_render.py" lint "$@" ;;
  render)
    with_install_lock do_install
    shift
    py "$HERE/helm_render.py" render "$@" ;;
  python)
    with_install_lock do_install
    shift
    py "$@" ;;
  *)
    echo "usage: $0 install | env | lint CHART [VALUES.json] [--strict]" \
      "| render CHART VALUES.json RELEASE NAMESPACE OUTDIR | python ARGS..." >&2
    exit 2 ;;
esac
