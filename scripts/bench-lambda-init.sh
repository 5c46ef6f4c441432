#!/usr/bin/env bash
# The Lambda authorizer's in-process init (`main` to ready: logging, config, AWS clients,
# the policy scan of the setting table and the JWKS fetch, concurrent), as the function
# logs it (`init_ms`), for the release build that ships and for the test-profile build that
# `./scripts/test` runs (dependencies unoptimised, docs/test-time.md). DESIGN.md's goal is
# <= 50 ms. Loopback only: DynamoDB Local (own instance) holds the tables, the sidecar's
# bench_upstream example serves the JWKS.
#
#   scripts/bench-lambda-init.sh            # 20 inits of each build, interleaved
#   BENCH_RUNS=50 scripts/bench-lambda-init.sh
#
# Each run starts the binary with AWS_LAMBDA_RUNTIME_API on a port nothing listens on: the
# init completes, the runtime client then fails to reach the API and the process ends, as
# a function would outside Lambda. What that costs comes after `init_ms` and is not in it.
# Builds: the authorizer in release and dev profiles, the bench examples in dev (set-up
# only). Markdown goes to stdout, progress to stderr.
# shellcheck disable=SC2015,SC2016,SC2034  # `a && b || die` is meant; '$LATEST' is literal; COMPONENT is for lib.sh
set -euo pipefail
COMPONENT=bench-lambda-init
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/lib.sh"
cd "$ROOT"

RUNS="${BENCH_RUNS:-20}"
case "$RUNS" in *[!0-9]* | '') die "BENCH_RUNS is a number" ;; esac
[ "$RUNS" -ge 1 ] && [ "$RUNS" -le 500 ] || die "BENCH_RUNS must be 1..500"

export INSTANCE="bench-init-$$"
bench_start

log "building the authorizer (release and dev) and the bench set-up examples (dev)"
cargo build --release --locked -p stepup-lambda --bin stepup-authorizer >&2
cargo build --locked -p stepup-lambda --bin stepup-authorizer >&2
cargo build --locked -p stepup-sidecar --example bench_upstream --example bench_setup >&2
declare -A BIN=(
  [release]="$CARGO_TARGET_DIR/release/stepup-authorizer"
  [test-profile]="$CARGO_TARGET_DIR/debug/stepup-authorizer"
)
EXAMPLES="$CARGO_TARGET_DIR/debug/examples"

ddb_env="$(./scripts/dynamodb-local.sh start)"
DDB="$(sed -n 's/^DYNAMODB_ENDPOINT=//p' <<<"$ddb_env")"
[ -n "$DDB" ] || die "DynamoDB Local printed no endpoint"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=dummy AWS_SECRET_ACCESS_KEY=dummy

UP_PORT="$(free_port)"
"$EXAMPLES/bench_upstream" "$UP_PORT" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
wait_until 10 "${PIDS[-1]}" curl -fsS -m 1 "http://127.0.0.1:$UP_PORT/jwks.json" \
  || die "the JWKS server did not start"
PREFIX="bench-init-$$"
"$EXAMPLES/bench_setup" "$DDB" "$PREFIX" | grep -q '^TOKEN=' || die "bench_setup failed"

DEAD_PORT="$(free_port)"
# init_once BUILD: one cold start; prints its init_ms.
init_once() {
  local out ms
  out="$(env -i PATH="$PATH" HOME="$HOME" \
    AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=dummy AWS_SECRET_ACCESS_KEY=dummy \
    STEPUP_USER_POOL_ID=us-east-1_StepUpTest STEPUP_CLIENT_IDS=stepup-test-client \
    STEPUP_TABLE_PREFIX="$PREFIX" STEPUP_DYNAMODB_ENDPOINT="$DDB" \
    STEPUP_JWKS_URL="http://127.0.0.1:$UP_PORT/jwks.json" \
    AWS_LAMBDA_FUNCTION_NAME=stepup-authorizer AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 \
    AWS_LAMBDA_FUNCTION_VERSION='$LATEST' AWS_LAMBDA_RUNTIME_API="127.0.0.1:$DEAD_PORT" \
    timeout 20 "${BIN[$1]}" 2>&1 || true)"
  ms="$(grep -o '"init_ms":[0-9.]*' <<<"$out" | head -1 | cut -d: -f2)"
  [ -n "$ms" ] || { printf '%s\n' "$out" | tail -5 >&2; die "$1: no init_ms logged (above)"; }
  echo "$ms"
}

BUILDS=(release test-profile)
for b in "${BUILDS[@]}"; do init_once "$b" >/dev/null; done # warm the page cache
log "$RUNS inits of each build, interleaved"
for _ in $(seq "$RUNS"); do
  for b in "${BUILDS[@]}"; do init_once "$b" >>"$WORK/$b.ms"; done
done

echo "| build | init_ms median | min | max | runs |"
echo "|---|---:|---:|---:|---:|"
for b in "${BUILDS[@]}"; do
  read -r median min max <<<"$(median_min_max <"$WORK/$b.ms")"
  printf '| %s | %.1f ms | %.1f ms | %.1f ms | %d |\n' "$b" "$median" "$min" "$max" "$(wc -l <"$WORK/$b.ms")"
done
