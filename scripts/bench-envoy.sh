#!/usr/bin/env bash
# What stepup's ext_authz costs behind a real Envoy 1.40, as CPU time per request against
# Envoy's own in-process JWT check, measured in one interleaved run so that the ratios hold
# from one run (and host) to the next. Loopback only, bounded (about 5 min at the defaults,
# plus the release build).
#
#   scripts/bench-envoy.sh                               # all set-ups, 5 reps, 5 s per run
#   BENCH_SETUPS="bare jwt_authn grpc http" BENCH_REPS=3 scripts/bench-envoy.sh
#   BENCH_PERF=1 scripts/bench-envoy.sh                  # plus a perf profile of the sidecar
#
# Set-ups (each its own Envoy, --concurrency 1, own ports; all started once and kept up):
#   bare       examples/envoy/envoy-baseline.yaml  no check at all
#   jwt_authn  examples/envoy/envoy-jwt-authn.yaml Envoy's jwt_authn filter, same RS256 token
#              and JWKS, its verified-token cache on: the ANCHOR every ratio refers to
#   grpc       examples/envoy/envoy-grpc.yaml      stepup gRPC ext_authz over TCP
#   http       examples/envoy/envoy-http.yaml      stepup HTTP ext_authz over TCP
#   grpc_uds   envoy-grpc.yaml with the stepup_authz endpoint rewritten here to
#              `pipe: {path: ...}`, against a second sidecar started with
#              --grpc-listen unix:... --http-listen unix:...
# Every request is GET /transfer with a valid bearer token: STEP_UP_REQUIRED, step-up
# complete, so the sidecar runs the whole decision (completion cache on, its default).
#
# Method.
# - Rounds: for rep in 1..BENCH_REPS, every set-up in BENCH_SETUPS order (A B C D E A B ...),
#   so slow drifts of the host hit all set-ups alike. Two passes: saturation (BENCH_CONNS
#   connections) then one connection, one wrk thread (latency without queueing).
# - Primary figure, CPU time per request: utime+stime (/proc/<pid>/stat fields 14 and 15,
#   clock ticks of `getconf CLK_TCK`, all threads) of the Envoy under test plus the sidecar
#   it calls, read before and after each run, divided by the requests wrk completed. (For
#   bare and jwt_authn the TCP sidecar is counted too; it is idle there.) Without
#   CONFIG_IRQ_TIME_ACCOUNTING (as on the host of the documented runs) loopback softirq work
#   done in a process's context is in its stime; with it, that work is left out.
# - Secondary: requests/s at saturation, p50/p99 at one connection (wrk --latency). Each
#   figure: median and min-max over the reps, and the ratio of the median to jwt_authn's.
#   The saturation table also shows the stack's CPU time over wall time (near 100%:
#   requests/s measures the stack, not the load generator) and how busy each pinned CPU
#   was for all processes (/proc/stat): more than the stack's share is other load.
# - Pinning (taskset; tokio sizes its worker pool from the affinity mask, so the sidecar
#   runs one worker, like Envoy's one): wrk on the first CPU of this process's affinity
#   list, every Envoy and both sidecars on the second. The upstream and DynamoDB Local go
#   to the third and later CPUs when there are any, else next to wrk: they are not part of
#   the measured stack, the same for every set-up, and off the stack's CPU they cannot
#   steal from it, so that CPU's time is only Envoy + sidecar (DynamoDB Local is read about
#   once per 30 s, the upstream answers `ok`). With one CPU nothing is pinned (logged).
# - Load generator: wrk (scripts/wrk.sh, Debian's wrk 4.1), not oha: it is C with an
#   epoll loop and a small cost per request, so one pinned CPU drives the stack's CPU to
#   saturation; the project's scripts already install it; it needs no Rust build of its own.
# - The sidecar is the release build of stepup-sidecar with production flags; a warm-up of
#   BENCH_WARMUP_SECS per Envoy precedes the first round; a run with any non-2xx answer or
#   socket error fails the whole benchmark. Before measuring, each Envoy must answer 200 to
#   the token and 401 to a token with a broken signature (except bare).
#
# Settings (environment):
#   BENCH_SETUPS       default "bare jwt_authn grpc http grpc_uds"
#   BENCH_REPS         repetitions per pass (default 5; use at least 5 for documented figures)
#   BENCH_SECS         seconds per measured run (default 5)
#   BENCH_CONNS        connections of the saturation pass (default 32)
#   BENCH_THREADS      wrk threads of the saturation pass (default 1: wrk has one CPU)
#   BENCH_WARMUP_SECS  warm-up per Envoy (default 2)
#   BENCH_PERF=1       an extra gRPC saturation run under `perf record -g -p <sidecar>`;
#                      the report goes to BENCH_PERF_OUT (default /tmp/bench-envoy-perf.txt)
#   CARGO_TARGET_DIR   default $HOME/.cache/stepup-target
# Markdown goes to stdout, progress to stderr.
# shellcheck disable=SC2015,SC2016  # `a && b || die` is meant; '${X}' are literal placeholders
set -euo pipefail
COMPONENT=bench-envoy
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/lib.sh"
cd "$ROOT"

SECS="${BENCH_SECS:-5}"
REPS="${BENCH_REPS:-5}"
CONNS="${BENCH_CONNS:-32}"
THREADS="${BENCH_THREADS:-1}"
WARMUP_SECS="${BENCH_WARMUP_SECS:-2}"
PERF="${BENCH_PERF:-0}"
PERF_OUT="${BENCH_PERF_OUT:-/tmp/bench-envoy-perf.txt}"
read -r -a SETUPS <<<"${BENCH_SETUPS:-bare jwt_authn grpc http grpc_uds}"
case "$SECS$REPS$CONNS$THREADS$WARMUP_SECS" in
  *[!0-9]*) die "BENCH_SECS, BENCH_REPS, BENCH_CONNS, BENCH_THREADS, BENCH_WARMUP_SECS are numbers" ;;
esac
[ "$SECS" -ge 1 ] && [ "$SECS" -le 60 ] || die "BENCH_SECS must be 1..60"
[ "$REPS" -ge 1 ] && [ "$REPS" -le 20 ] || die "BENCH_REPS must be 1..20"
[ "$WARMUP_SECS" -ge 1 ] && [ "$WARMUP_SECS" -le 30 ] || die "BENCH_WARMUP_SECS must be 1..30"
[ "$CONNS" -ge 1 ] && [ "$THREADS" -ge 1 ] && [ "$THREADS" -le "$CONNS" ] \
  || die "need 1 <= BENCH_THREADS <= BENCH_CONNS"
[ "${#SETUPS[@]}" -ge 1 ] || die "BENCH_SETUPS is empty"
declare -A TEMPLATE=(
  [bare]=examples/envoy/envoy-baseline.yaml
  [jwt_authn]=examples/envoy/envoy-jwt-authn.yaml
  [grpc]=examples/envoy/envoy-grpc.yaml
  [http]=examples/envoy/envoy-http.yaml
  [grpc_uds]=examples/envoy/envoy-grpc.yaml
)
declare -A SEEN=()
for s in "${SETUPS[@]}"; do
  [ -n "${TEMPLATE[$s]:-}" ] || die "unknown set-up '$s' (known: bare jwt_authn grpc http grpc_uds)"
  [ -z "${SEEN[$s]:-}" ] || die "set-up '$s' listed twice"
  SEEN[$s]=1
done
has_setup() { [ -n "${SEEN[$1]:-}" ]; }
est=$(( ${#SETUPS[@]} * (REPS * 2 * (SECS + 1) + WARMUP_SECS + 2) + 20 ))
[ "$PERF" = 1 ] && est=$(( est + SECS + 10 ))
log "about $(( est / 60 )) min $(( est % 60 )) s after the build (${#SETUPS[@]} set-ups, $REPS reps, ${SECS}s runs, 2 passes)"

export INSTANCE="bench-$$"
bench_start

# --- CPUs: the affinity list of this shell, expanded ("0-2,5" -> 0 1 2 5).
CPUS=()
IFS=, read -r -a cpu_ranges <<<"$(taskset -cp $$ | sed 's/.*: *//')"
for r in "${cpu_ranges[@]}"; do
  if [[ "$r" == *-* ]]; then
    for ((c = ${r%-*}; c <= ${r#*-}; c++)); do CPUS+=("$c"); done
  else
    CPUS+=("$r")
  fi
done
PIN_LOAD=(); PIN_STACK=(); PIN_OTHER=()
if [ "${#CPUS[@]}" -ge 2 ]; then
  CPU_LOAD="${CPUS[0]}"; CPU_STACK="${CPUS[1]}"
  if [ "${#CPUS[@]}" -ge 3 ]; then
    CPU_OTHER="$(IFS=,; echo "${CPUS[*]:2}")"
  else
    CPU_OTHER="$CPU_LOAD"
  fi
  PIN_LOAD=(taskset -c "$CPU_LOAD"); PIN_STACK=(taskset -c "$CPU_STACK"); PIN_OTHER=(taskset -c "$CPU_OTHER")
  PINNING="wrk on CPU $CPU_LOAD; Envoy and sidecar on CPU $CPU_STACK; upstream and DynamoDB Local on CPU $CPU_OTHER"
else
  CPU_LOAD=""; CPU_STACK=""
  PINNING="NOT pinned: only one CPU (${CPUS[*]}) available, wrk and the stack share it"
  log "WARNING: only one CPU available; running without pinning (the ratios still hold, requests/s is wrk plus the stack)"
fi
log "pinning: $PINNING"

# --- Build and components.
./scripts/wrk.sh install
ENVOY_BIN="$(./scripts/envoy.sh bin)"
log "building the sidecar and the bench examples (release)"
cargo build --release --locked -p stepup-sidecar --bin stepup-sidecar \
  --example bench_upstream --example bench_setup >&2
REL="$CARGO_TARGET_DIR/release"

ddb_env="$(./scripts/dynamodb-local.sh start)"
DDB="$(sed -n 's/^DYNAMODB_ENDPOINT=//p' <<<"$ddb_env")"
DDB_PID="$(sed -n 's/^DYNAMODB_PID=//p' <<<"$ddb_env")"
[ -n "$DDB" ] || die "DynamoDB Local printed no endpoint"
if [ -n "$DDB_PID" ] && [ "${#PIN_OTHER[@]}" -gt 0 ]; then
  taskset -a -p -c "$CPU_OTHER" "$DDB_PID" >/dev/null || log "WARNING: could not pin DynamoDB Local"
fi
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=dummy AWS_SECRET_ACCESS_KEY=dummy

UP_PORT="$(free_port)"
"${PIN_OTHER[@]}" "$REL/examples/bench_upstream" "$UP_PORT" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
wait_until 10 "${PIDS[-1]}" curl -fsS -m 1 "http://127.0.0.1:$UP_PORT/" || die "upstream did not start"

PREFIX="bench-$$"
TOKEN="$("$REL/examples/bench_setup" "$DDB" "$PREFIX" | sed -n 's/^TOKEN=//p')"
[ -n "$TOKEN" ] || die "bench_setup printed no token"
sig="${TOKEN##*.}"
if [ "${sig:0:4}" = AAAA ]; then BAD_TOKEN="${TOKEN%.*}.BBBB${sig:4}"; else BAD_TOKEN="${TOKEN%.*}.AAAA${sig:4}"; fi

# start_sidecar NAME GRPC_LISTEN HTTP_LISTEN: the release sidecar with production flags,
# pinned to the stack's CPU; sets SIDECAR_PID.
start_sidecar() {
  local name="$1" grpc="$2" http="$3" api admin
  api="$(free_port)"; admin="$(free_port)"
  RUST_LOG=warn "${PIN_STACK[@]}" "$REL/stepup-sidecar" \
    --region us-east-1 --user-pool-id us-east-1_StepUpTest \
    --allowed-client-ids stepup-test-client \
    --jwks-url "http://127.0.0.1:$UP_PORT/jwks.json" \
    --table-prefix "$PREFIX" --dynamodb-endpoint "$DDB" \
    --grpc-listen "$grpc" --http-listen "$http" \
    --api-listen "127.0.0.1:$api" --admin-listen "127.0.0.1:$admin" \
    >"$WORK/sidecar-$name.log" 2>&1 &
  SIDECAR_PID=$!
  PIDS+=("$SIDECAR_PID")
  API_PORT_OF[$name]="$api"
  if ! wait_until 20 "$SIDECAR_PID" curl -fsS -m 1 "http://127.0.0.1:$admin/readyz"; then
    tail -20 "$WORK/sidecar-$name.log" >&2
    if [ "$name" = uds ]; then
      die "the sidecar did not start with Unix-socket listeners ($grpc). It needs the 'UDS listeners' change; until then run with BENCH_SETUPS=\"bare jwt_authn grpc http\""
    fi
    die "sidecar ($name) not ready"
  fi
}
declare -A API_PORT_OF=()
GRPC_PORT="$(free_port)"; HTTP_PORT="$(free_port)"
start_sidecar tcp "127.0.0.1:$GRPC_PORT" "127.0.0.1:$HTTP_PORT"
SIDECAR_TCP="$SIDECAR_PID"
SIDECAR_UDS=""
UDS_GRPC="$WORK/authz-grpc.sock"; UDS_HTTP="$WORK/authz-http.sock"
if has_setup grpc_uds; then
  start_sidecar uds "unix:$UDS_GRPC" "unix:$UDS_HTTP"
  SIDECAR_UDS="$SIDECAR_PID"
fi

# --- Envoys. render TEMPLATE OUT KEY=VALUE...: replace each ${KEY} with VALUE.
render() {
  local tpl="$1" out="$2" kv k v args=(); shift 2
  for kv in "$@"; do
    k="${kv%%=*}"; v="${kv#*=}"
    v="$(printf '%s' "$v" | sed 's/[&|\\]/\\&/g')"
    args+=(-e "s|\${$k}|$v|g")
  done
  sed "${args[@]}" "$tpl" > "$out"
  # (comments may still name a placeholder the config no longer uses, e.g. grpc_uds's port)
  if grep -v '^[[:space:]]*#' "$out" | grep -q '\${[A-Z_]*}'; then
    die "$out: placeholders left: $(grep -v '^[[:space:]]*#' "$out" | grep -o '\${[A-Z_]*}' | sort -u | tr '\n' ' ')"
  fi
}
declare -A ENVOY_PID=() PORT=() SIDECAR_OF=()
JWKS_FILE="$ROOT/core/tests/fixtures/test_key_1.jwks.json"
for s in "${SETUPS[@]}"; do
  port="$(free_port)"; admin="$(free_port)"; cfg="$WORK/envoy-$s.yaml"
  common=(LISTEN_PORT="$port" ADMIN_PORT="$admin" UPSTREAM_PORT="$UP_PORT")
  SIDECAR_OF[$s]="$SIDECAR_TCP"
  case "$s" in
    bare) render "${TEMPLATE[$s]}" "$cfg" "${common[@]}" ;;
    jwt_authn) render "${TEMPLATE[$s]}" "$cfg" "${common[@]}" JWKS_FILE="$JWKS_FILE" ;;
    grpc) render "${TEMPLATE[$s]}" "$cfg" "${common[@]}" AUTHZ_PORT="$GRPC_PORT" API_PORT="${API_PORT_OF[tcp]}" ;;
    http) render "${TEMPLATE[$s]}" "$cfg" "${common[@]}" AUTHZ_PORT="$HTTP_PORT" API_PORT="${API_PORT_OF[tcp]}" ;;
    grpc_uds)
      # The one endpoint on ${AUTHZ_PORT} (the stepup_authz cluster) becomes a pipe address.
      sed 's|{socket_address: {address: 127\.0\.0\.1, port_value: \${AUTHZ_PORT}}}|{pipe: {path: "${AUTHZ_PIPE}"}}|' \
        "${TEMPLATE[$s]}" > "$WORK/envoy-grpc-uds.tpl"
      [ "$(grep -c 'pipe: {path: "${AUTHZ_PIPE}"}' "$WORK/envoy-grpc-uds.tpl")" = 1 ] \
        || die "could not rewrite the stepup_authz endpoint of ${TEMPLATE[$s]} to a pipe (did its layout change?)"
      render "$WORK/envoy-grpc-uds.tpl" "$cfg" "${common[@]}" AUTHZ_PIPE="$UDS_GRPC" API_PORT="${API_PORT_OF[uds]}"
      SIDECAR_OF[$s]="$SIDECAR_UDS" ;;
  esac
  "$ENVOY_BIN" --mode validate -c "$cfg" -l error >/dev/null || die "invalid config $cfg"
  "${PIN_STACK[@]}" "$ENVOY_BIN" -c "$cfg" --disable-hot-restart --concurrency 1 -l warning \
    >"$WORK/envoy-$s.log" 2>&1 &
  ENVOY_PID[$s]=$!
  PIDS+=("${ENVOY_PID[$s]}")
  PORT[$s]="$port"
  wait_until 10 "${ENVOY_PID[$s]}" sh -c "curl -fsS -m 1 http://127.0.0.1:$admin/ready | grep -q LIVE" \
    || { tail -20 "$WORK/envoy-$s.log" >&2; die "Envoy ($s) not ready"; }
done

status_of() { # status_of SETUP [AUTHORIZATION]
  local h=()
  [ -n "${2:-}" ] && h=(-H "Authorization: $2")
  curl -s -o /dev/null -m 5 -w '%{http_code}' "${h[@]}" "http://127.0.0.1:${PORT[$1]}/transfer"
}
for s in "${SETUPS[@]}"; do
  code="$(status_of "$s" "Bearer $TOKEN")"
  [ "$code" = 200 ] || die "$s: GET /transfer with the bench token answered $code, not 200"
  if [ "$s" != bare ]; then
    code="$(status_of "$s" "Bearer $BAD_TOKEN")"
    [ "$code" = 401 ] || die "$s: GET /transfer with a broken signature answered $code, not 401"
    code="$(status_of "$s")"
    [ "$code" = 401 ] || die "$s: GET /transfer without a token answered $code, not 401"
  fi
done
log "each Envoy answers 200 to the token; each but bare 401 to a broken or missing one"

# --- Measuring.
CLK_TCK="$(getconf CLK_TCK)"
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }   # utime+stime
cpu_stat() { # cpu_stat CPU -> "busy total" jiffies of that CPU since boot
  [ -n "$1" ] || { echo "0 0"; return; }
  awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat
}
wrk_run() { # wrk_run SETUP SECS CONNS THREADS OUT
  "${PIN_LOAD[@]}" ./scripts/wrk.sh run "http://127.0.0.1:${PORT[$1]}/transfer" "$2" "$3" "$4" \
    "Authorization: Bearer $TOKEN" > "$5"
  if grep -q -e "Non-2xx" -e "Socket errors" "$5"; then die "$1: wrk saw errors: $(cat "$5")"; fi
}
to_ms() { # wrk latency ("812.00us", "1.20ms", "1.01s") -> ms
  awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
    printf "%.4f", n }'
}
# pass setup rep cpu_us_per_req rps p50_ms p99_ms stack_share% cpu_stack_busy% cpu_load_busy%
RESULTS="$WORK/results.tsv"
: > "$RESULTS"
measure() { # measure PASS SETUP REP CONNS THREADS
  local pass="$1" s="$2" rep="$3" e="${ENVOY_PID[$2]}" sc="${SIDECAR_OF[$2]}" out t0 t1 s0 s1 w0 w1 a0 a1 l0 l1 n rps p50 p99
  out="$WORK/$pass-$s-$rep.wrk"
  read -r -a a0 <<<"$(cpu_stat "$CPU_STACK")"; read -r -a l0 <<<"$(cpu_stat "$CPU_LOAD")"
  s0="$(ticks "$sc")"; t0=$(( $(ticks "$e") + s0 )); w0="$(date +%s%N)"
  wrk_run "$s" "$SECS" "$4" "$5" "$out"
  s1="$(ticks "$sc")"; t1=$(( $(ticks "$e") + s1 )); w1="$(date +%s%N)"
  read -r -a a1 <<<"$(cpu_stat "$CPU_STACK")"; read -r -a l1 <<<"$(cpu_stat "$CPU_LOAD")"
  n="$(awk '/ requests in / {print $1; exit}' "$out")"
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
  p50="$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")"
  p99="$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")"
  [ -n "$n" ] && [ "$n" -gt 0 ] || die "$s: wrk completed no requests: $(cat "$out")"
  awk -v OFS='\t' -v pass="$pass" -v s="$s" -v rep="$rep" -v dt=$(( t1 - t0 )) -v hz="$CLK_TCK" \
      -v n="$n" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v wall=$(( w1 - w0 )) \
      -v ab=$(( a1[0] - a0[0] )) -v at=$(( a1[1] - a0[1] )) -v lb=$(( l1[0] - l0[0] )) -v lt=$(( l1[1] - l0[1] )) \
      -v sdt=$(( s1 - s0 )) \
    'BEGIN { print pass, s, rep, dt / hz * 1e6 / n, rps, p50, p99, 100 * dt / hz / (wall / 1e9),
             (at > 0 ? 100 * ab / at : -1), (lt > 0 ? 100 * lb / lt : -1), sdt / hz * 1e6 / n }' >> "$RESULTS"
  log "$pass $s rep $rep: $(tail -1 "$RESULTS" | awk '{printf "%.1f us CPU/req, %.0f req/s, p50 %.3f ms, p99 %.3f ms", $4, $5, $6, $7}')"
}

for s in "${SETUPS[@]}"; do
  log "$s: warm-up ${WARMUP_SECS}s, $CONNS connections"
  wrk_run "$s" "$WARMUP_SECS" "$CONNS" "$THREADS" "$WORK/warmup-$s.wrk"
done
START="$(date +%s)"; LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq 1 "$REPS"); do
  for s in "${SETUPS[@]}"; do measure sat "$s" "$rep" "$CONNS" "$THREADS"; done
done
for rep in $(seq 1 "$REPS"); do
  for s in "${SETUPS[@]}"; do measure one "$s" "$rep" 1 1; done
done
log "measured in $(( $(date +%s) - START )) s"

# --- Optional profile of the sidecar during one extra gRPC saturation run.
PERF_NOTE=""
if [ "$PERF" = 1 ]; then
  if ! has_setup grpc; then
    PERF_NOTE="BENCH_PERF=1 skipped: grpc is not in BENCH_SETUPS"
  elif ! command -v perf >/dev/null; then
    PERF_NOTE="BENCH_PERF=1 skipped: no perf binary"
  elif ! perf_err="$(perf record -g -o "$WORK/perf-check.data" -- sleep 0.1 2>&1)"; then
    PERF_NOTE="BENCH_PERF=1 skipped: perf cannot record here: $(tail -3 <<<"$perf_err" | tr '\n' ' ')"
  else
    log "perf: recording the sidecar (pid $SIDECAR_TCP) during an extra ${SECS}s gRPC run"
    "${PIN_LOAD[@]}" perf record -g -q -o "$WORK/perf.data" -p "$SIDECAR_TCP" -- sleep "$SECS" \
      >"$WORK/perf.log" 2>&1 &
    perf_pid=$!
    PIDS+=("$perf_pid")
    wrk_run grpc "$SECS" "$CONNS" "$THREADS" "$WORK/perf-run.wrk"
    wait "$perf_pid" || true
    perf report -i "$WORK/perf.data" --stdio --no-children > "$WORK/perf.txt" 2>"$WORK/perf-report.log" || true
    if [ -s "$WORK/perf.txt" ]; then
      { head -80 "$WORK/perf.txt"
        echo; echo "# flat: the 40 hottest symbols (perf report --stdio --no-children -g none)"
        perf report -i "$WORK/perf.data" --stdio --no-children -g none 2>/dev/null \
          | grep -v '^#' | grep -v '^$' | head -40 || true
      } > "$PERF_OUT"
      PERF_NOTE="perf profile of the sidecar (gRPC, ${CONNS} connections, ${SECS}s): $PERF_OUT"
    else
      PERF_NOTE="BENCH_PERF=1: perf report gave nothing ($(tail -2 "$WORK/perf.log" "$WORK/perf-report.log" | tr '\n' ' '))"
    fi
  fi
  log "$PERF_NOTE"
fi

# --- Report. stats PASS SETUP COLUMN -> "median min max" over the reps.
stats() {
  awk -v p="$1" -v s="$2" -v c="$3" '$1 == p && $2 == s { print $c }' "$RESULTS" | median_min_max
}
med() { stats "$@" | awk '{print $1}'; }
ratio() { # ratio VALUE ANCHOR
  if [ -z "$2" ]; then echo "—"; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; fi
}
anchor() { if has_setup jwt_authn; then med "$1" jwt_authn "$2"; fi; }
rss_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
commit="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
git diff --quiet HEAD -- core sidecar runtime Cargo.lock 2>/dev/null || commit="$commit + uncommitted changes in core/sidecar/runtime"
cpu_model="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)"

echo "## Envoy 1.40 + stepup ext_authz: CPU per request against Envoy's jwt_authn"
echo
echo "- $(date -u +%Y-%m-%d), commit $commit; \`GET /transfer\` (STEP_UP_REQUIRED, step-up complete), RS256 token"
echo "- set-ups interleaved ($(IFS=' '; echo "${SETUPS[*]}")) × $REPS reps per pass, ${SECS}s per run; Envoy \`--concurrency 1\`; release sidecar"
echo "- pinning: $PINNING"
echo "- host: $(nproc) CPUs, $(uname -srm), ${cpu_model:-unknown CPU}; load average (1, 5, 15 min) $LOAD_START before the rounds, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "- CPU/req = utime+stime of Envoy + sidecar per completed request (µs); median (min–max) over the reps; ratios are medians over jwt_authn's median"
echo

A_CPU="$(anchor sat 4)"; A_RPS="$(anchor sat 5)"
echo "### Saturation: $CONNS connections, $THREADS wrk thread(s)"
echo
pct() { awk -v v="$1" 'BEGIN { print (v < 0 ? "—" : sprintf("%.0f%%", v)) }'; }
echo "| set-up | CPU µs/req | min–max | of which sidecar | CPU vs jwt_authn | req/s | min–max | req/s vs jwt_authn | stack's use of its CPU | stack CPU busy (all) | wrk CPU busy (all) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for s in "${SETUPS[@]}"; do
  read -r c cmin cmax <<<"$(stats sat "$s" 4)"; read -r r rmin rmax <<<"$(stats sat "$s" 5)"
  printf '| %s | %.1f | %.1f–%.1f | %.1f | %s | %.0f | %.0f–%.0f | %s | %s | %s | %s |\n' "$s" "$c" "$cmin" "$cmax" \
    "$(med sat "$s" 11)" "$(ratio "$c" "$A_CPU")" "$r" "$rmin" "$rmax" "$(ratio "$r" "$A_RPS")" \
    "$(pct "$(med sat "$s" 8)")" "$(pct "$(med sat "$s" 9)")" "$(pct "$(med sat "$s" 10)")"
done
echo
echo "Medians. *Stack's use of its CPU*: Envoy + sidecar CPU time over wall time (near 100%: the stack was the bottleneck and had its CPU to itself). *Busy (all)*: /proc/stat, every process on that CPU; busy above the stack's use is other load on the host."
echo

A_CPU1="$(anchor one 4)"; A_P50="$(anchor one 6)"
H_P50=""; has_setup http && H_P50="$(med one http 6)"
echo "### One connection, 1 wrk thread (latency without queueing)"
echo
echo "| set-up | CPU µs/req | min–max | of which sidecar | CPU vs jwt_authn | p50 ms | min–max | p50 vs jwt_authn | added p50 vs jwt_authn ms | added p50 vs http ms | p99 ms | min–max |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for s in "${SETUPS[@]}"; do
  read -r c cmin cmax <<<"$(stats one "$s" 4)"; read -r p pmin pmax <<<"$(stats one "$s" 6)"
  read -r q qmin qmax <<<"$(stats one "$s" 7)"
  add_a="—"; [ -n "$A_P50" ] && [ "$s" != jwt_authn ] && add_a="$(awk -v a="$p" -v b="$A_P50" 'BEGIN { printf "%+.3f", a - b }')"
  add_h="—"
  case "$s" in grpc|grpc_uds) [ -n "$H_P50" ] && add_h="$(awk -v a="$p" -v b="$H_P50" 'BEGIN { printf "%+.3f", a - b }')" ;; esac
  printf '| %s | %.1f | %.1f–%.1f | %.1f | %s | %.3f | %.3f–%.3f | %s | %s | %s | %.3f | %.3f–%.3f |\n' "$s" "$c" "$cmin" "$cmax" \
    "$(med one "$s" 11)" "$(ratio "$c" "$A_CPU1")" "$p" "$pmin" "$pmax" "$(ratio "$p" "$A_P50")" "$add_a" "$add_h" "$q" "$qmin" "$qmax"
done
echo
printf 'Sidecar peak resident memory (VmHWM): %s MiB (TCP sidecar: grpc, http)' "$(rss_mib "$SIDECAR_TCP")"
[ -n "$SIDECAR_UDS" ] && printf ', %s MiB (Unix-socket sidecar: grpc_uds)' "$(rss_mib "$SIDECAR_UDS")"
echo
[ -n "$PERF_NOTE" ] && { echo; echo "$PERF_NOTE"; }
echo
echo "<details><summary>every run (pass, set-up, rep, CPU µs/req, req/s, p50 ms, p99 ms, stack's use of its CPU %, stack CPU busy %, wrk CPU busy %, sidecar CPU µs/req)</summary>"
echo
echo '```'
awk '{ printf "%s\t%s\t%s\t%.1f\t%.0f\t%.3f\t%.3f\t%.0f\t%.0f\t%.0f\t%.1f\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }' "$RESULTS"
echo '```'
echo
echo "</details>"
