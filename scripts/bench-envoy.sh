#!/usr/bin/env bash
# Envoy with and without stepup ext_authz, on loopback: requests/s and latency of the same
# Envoy 1.40 (one worker) in front of the same tiny upstream, on GET /transfer —
# a privileged path whose step-up is complete — in three set-ups:
#
#   baseline  examples/envoy/envoy-baseline.yaml (no ext_authz)
#   grpc      examples/envoy/envoy-grpc.yaml     (gRPC check)
#   http      examples/envoy/envoy-http.yaml     (HTTP check)
#
#   scripts/bench-envoy.sh                 # 10 s per set-up, 32 connections, 2 wrk threads
#   BENCH_SECS=5 BENCH_CONNS=16 scripts/bench-envoy.sh
#
# It builds the sidecar and two small example binaries in release, starts a DynamoDB Local
# of its own (scripts/dynamodb-local.sh, INSTANCE=bench-<pid>), the upstream
# (sidecar/examples/bench_upstream.rs, which also serves the test fixture JWKS), writes the
# tables, the seed's items and a completed session (sidecar/examples/bench_setup.rs, which
# prints a fixture-key token for it), starts the release sidecar (completion cache on, its
# default), then each Envoy in turn under wrk (scripts/wrk.sh; loopback only, bounded). It
# prints a Markdown table: requests/s, p50, p99, the ratio to the baseline, the added
# latency, and the sidecar's peak resident memory (VmHWM) after each mode. Everything runs
# on one host: wrk, Envoy, the sidecar, the upstream and DynamoDB Local share the CPUs.
set -euo pipefail
COMPONENT=bench-envoy
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/lib.sh"
cd "$ROOT"

SECS="${BENCH_SECS:-10}"
CONNS="${BENCH_CONNS:-32}"
THREADS="${BENCH_THREADS:-2}"
WARMUP_SECS=2
case "$SECS$CONNS$THREADS" in *[!0-9]*) die "BENCH_SECS, BENCH_CONNS, BENCH_THREADS are numbers" ;; esac
[ "$SECS" -ge 1 ] && [ "$SECS" -le 60 ] || die "BENCH_SECS must be 1..60"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stepup-target}"
export INSTANCE="bench-$$"
WORK="$(mktemp -d)"
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ./scripts/dynamodb-local.sh stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

./scripts/wrk.sh install
ENVOY_BIN="$(./scripts/envoy.sh bin)"
log "building the sidecar and the bench examples (release)"
cargo build --release --locked -p stepup-sidecar --bin stepup-sidecar \
  --example bench_upstream --example bench_setup >&2
REL="$CARGO_TARGET_DIR/release"

ddb_env="$(./scripts/dynamodb-local.sh start)"
DDB="$(sed -n 's/^DYNAMODB_ENDPOINT=//p' <<<"$ddb_env")"
[ -n "$DDB" ] || die "DynamoDB Local printed no endpoint"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=dummy AWS_SECRET_ACCESS_KEY=dummy

UP_PORT="$(free_port)"
"$REL/examples/bench_upstream" "$UP_PORT" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
wait_until 10 "${PIDS[-1]}" curl -fsS -m 1 "http://127.0.0.1:$UP_PORT/" || die "upstream did not start"

PREFIX="bench-$$"
TOKEN="$("$REL/examples/bench_setup" "$DDB" "$PREFIX" | sed -n 's/^TOKEN=//p')"
[ -n "$TOKEN" ] || die "bench_setup printed no token"

GRPC_PORT="$(free_port)"; HTTP_PORT="$(free_port)"; API_PORT="$(free_port)"; ADMIN_PORT="$(free_port)"
RUST_LOG=warn "$REL/stepup-sidecar" \
  --region us-east-1 --user-pool-id us-east-1_StepUpTest \
  --allowed-client-ids stepup-test-client \
  --jwks-url "http://127.0.0.1:$UP_PORT/jwks.json" \
  --table-prefix "$PREFIX" --dynamodb-endpoint "$DDB" \
  --grpc-listen "127.0.0.1:$GRPC_PORT" --http-listen "127.0.0.1:$HTTP_PORT" \
  --api-listen "127.0.0.1:$API_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  >"$WORK/sidecar.log" 2>&1 &
SIDECAR_PID=$!
PIDS+=("$SIDECAR_PID")
wait_until 20 "$SIDECAR_PID" curl -fsS -m 1 "http://127.0.0.1:$ADMIN_PORT/readyz" \
  || { tail -20 "$WORK/sidecar.log" >&2; die "sidecar not ready"; }

rss_kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$SIDECAR_PID/status"; }

# run_mode NAME TEMPLATE AUTHZ_PORT: start Envoy, check the path is allowed, warm up,
# measure; leaves wrk's output in $WORK/NAME.wrk.
run_mode() {
  local name="$1" template="$2" authz="${3:-0}" port admin cfg pid code
  port="$(free_port)"; admin="$(free_port)"; cfg="$WORK/envoy-$name.yaml"
  sed -e "s/\${LISTEN_PORT}/$port/g" -e "s/\${ADMIN_PORT}/$admin/g" \
      -e "s/\${UPSTREAM_PORT}/$UP_PORT/g" -e "s/\${AUTHZ_PORT}/$authz/g" \
      -e "s/\${API_PORT}/$API_PORT/g" "$template" > "$cfg"
  "$ENVOY_BIN" --mode validate -c "$cfg" -l error >/dev/null || die "invalid config $cfg"
  "$ENVOY_BIN" -c "$cfg" --disable-hot-restart --concurrency 1 -l warning \
    >"$WORK/envoy-$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_until 10 "$pid" sh -c "curl -fsS -m 1 http://127.0.0.1:$admin/ready | grep -q LIVE" \
    || die "Envoy ($name) not ready"
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/transfer")"
  [ "$code" = 200 ] || die "$name: GET /transfer answered $code, not 200"
  log "$name: warm-up ${WARMUP_SECS}s, then ${SECS}s with $CONNS connections, $THREADS threads"
  ./scripts/wrk.sh run "http://127.0.0.1:$port/transfer" "$WARMUP_SECS" "$CONNS" "$THREADS" \
    "Authorization: Bearer $TOKEN" >/dev/null
  ./scripts/wrk.sh run "http://127.0.0.1:$port/transfer" "$SECS" "$CONNS" "$THREADS" \
    "Authorization: Bearer $TOKEN" > "$WORK/$name.wrk"
  grep -q "Non-2xx" "$WORK/$name.wrk" && die "$name: wrk saw non-2xx answers: $(cat "$WORK/$name.wrk")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run_mode baseline examples/envoy/envoy-baseline.yaml
RSS_IDLE="$(rss_kib VmRSS)"
run_mode grpc examples/envoy/envoy-grpc.yaml "$GRPC_PORT"
HWM_GRPC="$(rss_kib VmHWM)"
run_mode http examples/envoy/envoy-http.yaml "$HTTP_PORT"
HWM_HTTP="$(rss_kib VmHWM)"

# rps FILE, pct FILE 50|99 -> milliseconds
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
pct() {
  awk -v p="$2%" '$1 == p {
    v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
    if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000;
    printf "%.3f", v }' "$1"
}

B_RPS="$(rps "$WORK/baseline.wrk")"; B50="$(pct "$WORK/baseline.wrk" 50)"; B99="$(pct "$WORK/baseline.wrk" 99)"
echo
echo "## Envoy 1.40 + stepup ext_authz, GET /transfer (step-up complete), ${SECS}s, $CONNS connections, $THREADS wrk threads"
echo "host: $(nproc) CPUs, $(uname -srm); wrk, Envoy (--concurrency 1), the sidecar, the upstream and DynamoDB Local on one host"
echo
echo "| set-up | requests/s | vs. baseline | p50 ms | p99 ms | added p50 ms | added p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for name in baseline grpc http; do
  f="$WORK/$name.wrk"; r="$(rps "$f")"; p50="$(pct "$f" 50)"; p99="$(pct "$f" 99)"
  awk -v n="$name" -v r="$r" -v br="$B_RPS" -v p50="$p50" -v p99="$p99" -v b50="$B50" -v b99="$B99" \
    'BEGIN { printf "| %s | %.0f | %.0f%% | %.3f | %.3f | %+.3f | %+.3f |\n", n, r, 100*r/br, p50, p99, p50-b50, p99-b99 }'
done
echo
awk -v i="$RSS_IDLE" -v g="$HWM_GRPC" -v h="$HWM_HTTP" 'BEGIN {
  printf "sidecar resident memory: %.1f MiB before load; peak (VmHWM) %.1f MiB after the gRPC run, %.1f MiB after the HTTP run\n", i/1024, g/1024, h/1024 }'
echo
echo "raw wrk output:"
for name in baseline grpc http; do echo "--- $name"; cat "$WORK/$name.wrk"; done
