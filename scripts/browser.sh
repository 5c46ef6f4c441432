#!/usr/bin/env bash
# Headless Chromium for the demo page's browser test (demo/tests/demo_browser.rs):
# Debian `chromium` + `chromium-driver` from apt, and npm `playwright-core` driving
# /usr/bin/chromium (playwright-core downloads no browser and runs no install script).
#
#   scripts/browser.sh install   # idempotent: apt-get chromium chromium-driver when missing
#                                #   (--no-install-recommends), npm playwright-core into
#                                #   $INFRA_CACHE/browser/playwright-core-<version>
#   scripts/browser.sh env       # installs if needed; prints CHROMIUM_PATH, CHROMIUM_ARGS,
#                                #   PLAYWRIGHT_NODE_PATH as KEY=VALUE lines
#
# NO_APT=1 skips apt (chromium must then already be there); PLAYWRIGHT_CORE_VERSION picks
# another playwright-core.
COMPONENT=browser
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PW_VERSION="${PLAYWRIGHT_CORE_VERSION:-1.65.1}"
PW_DIR="$INFRA_CACHE/$COMPONENT/playwright-core-$PW_VERSION"
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
# Keep Chromium off the network and quiet as root in a container.
CHROMIUM_ARGS="--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage"

do_install() {
  if [ "${NO_APT:-0}" != 1 ] && { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; }; then
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
      || die "chromium/chromedriver missing; install them (sudo apt-get install -y --no-install-recommends chromium chromium-driver) and retry"
    log "apt-get install chromium chromium-driver (no recommends: ~26 packages, ~133 MB download)"
    # refresh the package lists only when apt cannot find chromium
    apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]' || apt_get update -q >&2
    apt_get install -y -q --no-install-recommends chromium chromium-driver >&2 \
      || die "apt-get install failed"
  fi
  if [ ! -f "$PW_DIR/.installed" ]; then
    need_cmd npm npm
    log "npm install playwright-core@$PW_VERSION into $PW_DIR"
    mkdir -p "$PW_DIR"
    npm install --silent --no-save --no-audit --no-fund --no-package-lock --prefix "$PW_DIR" \
      "playwright-core@$PW_VERSION" >&2 || die "npm install playwright-core failed"
    touch "$PW_DIR/.installed"
  fi
}

print_browser_env() {
  echo "CHROMIUM_PATH=$CHROMIUM"
  echo "CHROMIUM_ARGS=\"$CHROMIUM_ARGS\""
  echo "PLAYWRIGHT_NODE_PATH=$PW_DIR/node_modules"
}

case "${1:-}" in
  install) with_install_lock do_install ;;
  env) with_install_lock do_install; print_browser_env ;;
  *) echo "usage: $0 install|env" >&2; exit 2 ;;
esac
