#!/usr/bin/env bash
# wrk, the HTTP load generator (Debian package `wrk`), against loopback targets only.
#
#   scripts/wrk.sh install                       # idempotent: apt-get install wrk if missing
#   scripts/wrk.sh run URL [SECS] [CONNS] [THREADS] [HEADER]
#                                                # wrk -tTHREADS -cCONNS -dSECS --latency URL
#                                                # (default 10 s, 32 connections, 2 threads);
#                                                # HEADER e.g. "Authorization: Bearer ..."
#
# Refuses any URL that is not 127.0.0.0/8, localhost or [::1], and runs longer than 120 s;
# every run is wrapped in `timeout`.
COMPONENT=wrk
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

do_install() {
  if command -v wrk >/dev/null; then return 0; fi
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "wrk missing; install it (sudo apt-get install -y wrk)"
  apt-cache policy wrk 2>/dev/null | grep -q 'Candidate: [0-9]' || apt_get update -qq >&2
  apt_get install -y -qq --no-install-recommends wrk >&2 \
    || die "apt-get install wrk failed"
  log "installed $(wrk --version 2>&1 | head -1)"
}

loopback_only() {
  case "$1" in
    http://127.*|http://localhost:*|http://localhost/*|http://\[::1\]*) ;;
    *) die "refusing a non-loopback target: $1" ;;
  esac
}

do_run() {
  local url="${1:?usage: $0 run URL [SECS] [CONNS] [THREADS] [HEADER]}" secs="${2:-10}" conns="${3:-32}" threads="${4:-2}" header="${5:-}"
  loopback_only "$url"
  case "$secs$conns$threads" in *[!0-9]*) die "SECS, CONNS and THREADS are numbers" ;; esac
  [ "$secs" -ge 1 ] && [ "$secs" -le 120 ] || die "keep runs bounded (1..120 s)"
  with_install_lock do_install
  local hdr=()
  [ -n "$header" ] && hdr=(-H "$header")
  timeout $(( secs + 30 )) wrk -t "$threads" -c "$conns" -d "${secs}s" --latency "${hdr[@]}" "$url"
}

case "${1:-}" in
  install) with_install_lock do_install ;;
  run) shift; do_run "$@" ;;
  *) echo "usage: $0 install | run URL [SECS] [CONNS] [THREADS] [HEADER]" >&2; exit 2 ;;
esac
