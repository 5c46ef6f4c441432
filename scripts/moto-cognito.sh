#!/usr/bin/env bash
# moto server (PyPI `moto[cognitoidp]` plus flask) on 127.0.0.1, as a stand-in for Amazon
# Cognito user pools: the Cognito client tests (core/tests/cognito_moto.rs) talk to it
# through the real AWS SDK.
#
#   scripts/moto-cognito.sh install   # idempotent: a venv in $INFRA_CACHE/moto/<version>-<extras>
#   scripts/moto-cognito.sh start     # installs if needed, starts on a free port, waits for
#                                     # /moto-api/data.json, prints MOTO_ENDPOINT=... lines
#   scripts/moto-cognito.sh reset     # POST /moto-api/reset (wipe all state)
#   scripts/moto-cognito.sh stop | status | env | python
#
#   eval "$(scripts/moto-cognito.sh start)"; cargo test; scripts/moto-cognito.sh stop
#
# What moto does and does not do as Cognito (shared/recipes/REPORT.md §3): pools, clients,
# users, USER_PASSWORD_AUTH tokens, JWKS, GetUser, AssociateSoftwareToken (the secret is
# always `asdfasdfasdf`) and VerifySoftwareToken work; GetUserAttributeVerificationCode and
# VerifyUserAttribute are not implemented (HTTP 500).
#
# MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP defaults to true here: VerifySoftwareToken then
# really checks the RFC 6238 code of the fixed secret (without it any code passes).
# Needs python3 (>= 3.9) with pip and curl. INSTANCE=name runs several side by side;
# MOTO_PORT picks the port; MOTO_VERSION another moto version.
COMPONENT=moto
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION="${MOTO_VERSION:-5.2.5}"
EXTRAS=cognitoidp
DIR="$INFRA_CACHE/$COMPONENT/$VERSION-$EXTRAS"
VENV="$DIR/venv"

do_install() {
  if [ -f "$DIR/.installed" ]; then log "already installed in $VENV"; return 0; fi
  need_pip
  rm -rf "$DIR"; mkdir -p "$DIR"
  log "python3 -m venv --without-pip + pip --python install moto[$EXTRAS]==$VERSION"
  # --without-pip plus the outer pip's --python saves ~3 s of ensurepip per venv.
  make_venv "$VENV"
  # moto[cognitoidp] lacks the server's web dependencies; flask + flask-cors are what
  # moto_server needs (the full moto[server] is 3x bigger and not needed for Cognito).
  python3 -m pip --python "$VENV/bin/python" install -q --disable-pip-version-check \
      "moto[$EXTRAS]==$VERSION" "flask==3.1.3" "flask-cors==6.0.5" >&2 \
    || die "pip install failed"
  touch "$DIR/.installed"
  log "installed moto $VERSION ($(du -sh "$VENV" | cut -f1))"
}

ready() { curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$1/moto-api/data.json"; }

do_start() {
  if is_running; then log "already running"; cat "$(envfile)"; return 0; fi
  with_install_lock do_install
  need_cmd curl curl
  local port="${MOTO_PORT:-$(free_port)}" pid t0 rc=0
  t0="$(now_ms)"
  (cd "$INFRA_RUN" && MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP="${MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP:-true}" \
    exec "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port") >"$(logfile)" 2>&1 &
  pid=$!
  echo "$pid" > "$(pidfile)"
  wait_until 30 "$pid" ready "$port" || rc=$?
  if [ "$rc" != 0 ]; then
    log "did not become ready; log:"; tail -20 "$(logfile)" >&2; stop_pid; return 1
  fi
  cat > "$(envfile)" <<ENV
MOTO_ENDPOINT=http://127.0.0.1:$port
MOTO_PORT=$port
MOTO_PID=$pid
COGNITO_JWKS_URL_TEMPLATE=http://127.0.0.1:$port/{user_pool_id}/.well-known/jwks.json
COGNITO_ISSUER_TEMPLATE=https://cognito-idp.{region}.amazonaws.com/{user_pool_id}
ENV
  log "ready on 127.0.0.1:$port (pid $pid) in $(( $(now_ms) - t0 )) ms"
  cat "$(envfile)"
}

case "${1:-}" in
  install) with_install_lock do_install ;;
  start) do_start ;;
  reset)
    is_running || die "not running"
    . "$(envfile)"
    curl -fsS -X POST "$MOTO_ENDPOINT/moto-api/reset" >/dev/null && log "state reset" ;;
  stop) stop_pid ;;
  status) print_status ;;
  env) print_env ;;
  python) echo "$VENV/bin/python" ;;
  *) echo "usage: $0 install | start | reset | stop | status | env | python" >&2; exit 2 ;;
esac
