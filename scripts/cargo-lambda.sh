#!/usr/bin/env bash
# cargo-lambda (static binary from the PyPI wheel cargo-lambda) and its local Lambda emulator
# (`cargo lambda watch`) on 127.0.0.1.
#
#   cargo-lambda.sh install            # idempotent: $INFRA_CACHE/cargo-lambda/<ver>/bin/cargo-lambda
#                                      # WITH_ZIG=1 also installs PyPI ziglang (only needed for
#                                      # `cargo lambda build` without --compiler cargo)
#   [CARGO_LAMBDA_PROJECT=DIR] cargo-lambda.sh start   (default: lambda/)
#                                      # cargo build, then `cargo lambda watch` on a free port;
#                                      # prints LAMBDA_ENDPOINT=... (invoke URL:
#                                      # $LAMBDA_ENDPOINT/2015-03-31/functions/<bin>/invocations)
#   cargo-lambda.sh invoke FUNCTION EVENT.json   # cargo lambda invoke --data-file against it
#   cargo-lambda.sh path               # prints a PATH prefix that provides `cargo lambda`
#   cargo-lambda.sh stop | status | env
COMPONENT=cargo-lambda
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

VERSION="${CARGO_LAMBDA_VERSION:-1.9.2}"
DIR="$INFRA_CACHE/$COMPONENT/$VERSION"
BIN="$DIR/bin"
ZIGVENV="$INFRA_CACHE/$COMPONENT/ziglang-venv"
PROJECT="${CARGO_LAMBDA_PROJECT:-$HERE/../lambda}"

do_install() {
  if [ ! -f "$DIR/.installed" ]; then
    need_pip
    need_cmd unzip unzip
    local tmp; tmp="$(mktemp -d)"
    log "pip download cargo-lambda==$VERSION (wheel only; --no-deps skips ziglang)"
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "cargo-lambda==$VERSION" >&2 \
      || { rm -rf "$tmp"; die "pip download failed"; }
    mkdir -p "$BIN"
    unzip -q -o -j "$tmp"/cargo_lambda-*.whl "cargo_lambda-$VERSION.data/scripts/cargo-lambda" -d "$BIN"
    chmod +x "$BIN/cargo-lambda"
    rm -rf "$tmp"
    touch "$DIR/.installed"
    log "installed $("$BIN/cargo-lambda" lambda --version) ($(du -sh "$BIN/cargo-lambda" | cut -f1))"
  else
    log "already installed: $BIN/cargo-lambda"
  fi
  if [ "${WITH_ZIG:-0}" = 1 ] && [ ! -f "$ZIGVENV/.installed" ]; then
    log "installing ziglang into $ZIGVENV"
    python3 -m venv "$ZIGVENV" && "$ZIGVENV/bin/pip" install -q ziglang >&2 && touch "$ZIGVENV/.installed"
  fi
}

path_prefix() {  # cargo-lambda finds zig as `python3 -m ziglang` through the venv's python3
  if [ -f "$ZIGVENV/.installed" ]; then echo "$BIN:$ZIGVENV/bin"; else echo "$BIN"; fi
}

emulator_up() { curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/"; }

do_start() {
  if is_running; then log "already running"; cat "$(envfile)"; return 0; fi
  with_install_lock do_install
  need_cmd curl curl
  [ -f "$PROJECT/Cargo.toml" ] || die "no Cargo.toml in CARGO_LAMBDA_PROJECT=$PROJECT"
  export PATH="$(path_prefix):$PATH"
  local port="${CARGO_LAMBDA_PORT:-$(free_port)}" pid t0
  log "cargo build in $PROJECT (so the first invoke does not wait for a compile)"
  (cd "$PROJECT" && cargo build -q) >&2 || die "cargo build failed"
  t0="$(now_ms)"
  (cd "$PROJECT" && exec cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" \
       ${CARGO_LAMBDA_WATCH_ARGS:-}) >"$(logfile)" 2>&1 &
  pid=$!
  echo "$pid" > "$(pidfile)"
  if ! wait_until 120 "$pid" emulator_up "$port"; then
    log "emulator not up; log:"; tail -20 "$(logfile)" >&2; stop_pid; return 1
  fi
  cat > "$(envfile)" <<EOF
LAMBDA_ENDPOINT=http://127.0.0.1:$port
LAMBDA_PORT=$port
LAMBDA_PID=$pid
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=dummy
AWS_SECRET_ACCESS_KEY=dummy
EOF
  log "emulator ready on 127.0.0.1:$port (pid $pid) in $(( $(now_ms) - t0 )) ms"
  cat "$(envfile)"
}

do_invoke() {
  local fn="${1:?function (binary) name}" data="${2:?event json file}"
  # shellcheck disable=SC1090
  . "$(envfile)"
  # use the long options: -A means both --invoke-address and --data-ascii in 1.9.2's help
  (cd "$PROJECT" && "$BIN/cargo-lambda" lambda invoke --invoke-address 127.0.0.1 \
      --invoke-port "$LAMBDA_PORT" --data-file "$data" "$fn")
}

case "${1:-}" in
  install) with_install_lock do_install ;;
  start) do_start ;;
  invoke) shift; do_invoke "$@" ;;
  path) path_prefix ;;
  stop) stop_pid ;;
  status) if is_running; then log "running (pid $(cat "$(pidfile)"))"; else log "not running"; exit 1; fi ;;
  env) print_env ;;
  *) echo "usage: $0 install|start|invoke FN EVENT.json|path|stop|status|env" >&2; exit 2 ;;
esac
