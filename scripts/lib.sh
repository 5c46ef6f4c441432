# Shared helpers for the component scripts in scripts/ (dynamodb-local.sh, and later Envoy,
# moto, helm, ...). Source it; do not run it.
#
# Every component script follows one interface:
#   X.sh install | start | stop | status | env
# `start` installs if needed (idempotently, into $INFRA_CACHE), starts the component on a
# free 127.0.0.1 port, waits until it really answers, and prints its connection details on
# stdout as KEY=VALUE lines, so that `eval "$(scripts/X.sh start)"` works. Progress and
# errors go to stderr.
#
# Environment:
#   INFRA_CACHE  where components are installed (default: $HOME/.cache/stepup-infra); each
#                component uses its own sub-directory and skips the install when it is there.
#   INFRA_RUN    where pid files, env files and logs go
#                (default: ${TMPDIR:-/tmp}/stepup-infra-run).
#   INSTANCE     a name, so that several copies of one component can run side by side.

set -euo pipefail

INFRA_CACHE="${INFRA_CACHE:-$HOME/.cache/stepup-infra}"
INFRA_RUN="${INFRA_RUN:-${TMPDIR:-/tmp}/stepup-infra-run}"
mkdir -p "$INFRA_CACHE" "$INFRA_RUN"

log() { printf '[%s] %s\n' "${COMPONENT:-infra}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Current time in milliseconds (for start-up timing).
now_ms() { date +%s%3N; }

# apt_get ARGS...: apt-get, serialised across the component scripts (test binaries run
# their installs in parallel, and a second apt-get would fail on the dpkg lock at once),
# and waiting for a dpkg lock held by anything else.
apt_get() {
  flock "$INFRA_CACHE/.apt.lock" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 "$@"
}

# apt_install PKG...: install Debian packages, but only when we are root on a machine with
# apt-get (a CI container); anywhere else say what is missing and stop.
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing $* with apt-get"
    apt_get update -qq >&2
    apt_get install -y -qq --no-install-recommends "$@" >&2
  else
    die "missing $*; install it (e.g. sudo apt-get install -y $*) and retry"
  fi
}

# need_pip: python3 with its pip module (Debian's python3 comes without it).
need_pip() {
  need_cmd python3 python3
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip still missing after installing python3-pip"
}

# make_venv DIR: a venv without pip (the outer pip installs into it with --python),
# installing Debian's python3-venv when the venv module refuses.
make_venv() {
  python3 -m venv --without-pip "$1" 2>/dev/null && return 0
  apt_install python3-venv
  rm -rf "$1"
  python3 -m venv --without-pip "$1" || die "python3 -m venv failed"
}

# need_cmd CMD APT_PKG...: make sure CMD exists, installing APT_PKG... when it does not.
need_cmd() {
  local cmd="$1"; shift
  command -v "$cmd" >/dev/null && return 0
  apt_install "$@"
  command -v "$cmd" >/dev/null || die "$cmd still not found after installing $*"
}

# port_is_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free TCP port on 127.0.0.1. With python3 the kernel picks it; without, random probing in
# the ephemeral range. Either way there is a tiny race until the server binds it.
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local p i
  for i in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 30000 ))
    if port_is_free "$p"; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

# wait_until TIMEOUT_S PID CMD...: run CMD every 0.1 s until it succeeds. Returns 2 if PID
# dies first, 1 if TIMEOUT_S passes.
wait_until() {
  local timeout="$1" pid="$2"; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  while ! "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then return 2; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then return 1; fi
    sleep 0.1
  done
}

# Per-instance files.
pidfile() { echo "$INFRA_RUN/${COMPONENT}${INSTANCE:+-$INSTANCE}.pid"; }
envfile() { echo "$INFRA_RUN/${COMPONENT}${INSTANCE:+-$INSTANCE}.env"; }
logfile() { echo "$INFRA_RUN/${COMPONENT}${INSTANCE:+-$INSTANCE}.log"; }

is_running() {
  local pf; pf="$(pidfile)"
  [ -f "$pf" ] && kill -0 "$(cat "$pf")" 2>/dev/null
}

# stop_pid: stop the process recorded in the pid file (TERM, then KILL after 10 s).
stop_pid() {
  local pf pid; pf="$(pidfile)"
  if [ ! -f "$pf" ]; then log "not running (no $pf)"; return 0; fi
  pid="$(cat "$pf")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored TERM; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped pid $pid"
  else
    log "pid $pid was not running"
  fi
  rm -f "$pf" "$(envfile)"
}

# print_env: the KEY=VALUE lines of a running instance.
print_env() {
  if is_running; then cat "$(envfile)"; else log "not running"; return 1; fi
}

# print_status: exit 0 and say so when the instance runs, 1 otherwise.
print_status() {
  if is_running; then log "running (pid $(cat "$(pidfile)"))"; else log "not running"; return 1; fi
}

# with_install_lock CMD...: run CMD holding a per-component lock, so that two concurrent
# installs into one cache do not race.
with_install_lock() {
  local lock="$INFRA_CACHE/.${COMPONENT}.lock"
  exec 9>"$lock"
  flock 9
  "$@"
  flock -u 9
  exec 9>&-   # do not leak the lock file into servers started afterwards
}

# For the benchmark scripts (called from the repository root, after INSTANCE is set):
# CARGO_TARGET_DIR defaulted, a scratch directory $WORK, and on exit every process whose
# pid was added to PIDS ended, this INSTANCE's DynamoDB Local stopped and $WORK removed.
bench_start() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stepup-target}"
  WORK="$(mktemp -d)"
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
bench_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ./scripts/dynamodb-local.sh stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}

# median_min_max: numbers on stdin, one per line -> "median min max" ("nan nan nan" for none).
median_min_max() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan nan nan"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}
