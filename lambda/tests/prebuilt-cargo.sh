#!/bin/sh
# The `cargo` that the emulator test (lambda/tests/emulator.rs) gives `cargo lambda watch`
# through $CARGO. The emulator starts a function with
#
#   $CARGO run --color auto --manifest-path Cargo.toml --bin <function>
#
# which would build the package a second time, alone, with other features than the test
# run's build (`cargo test --workspace` unifies the features of every member and of the
# dev-dependencies), i.e. tokio, hyper, the AWS SDK and most of the tree again: minutes on a
# fresh machine. Here `run` executes the binary cargo already built for this test run
# ($STEPUP_PREBUILT_DIR/<function>, the directory of CARGO_BIN_EXE_<function>) with the
# emulator's environment and arguments; every other command (`cargo metadata`) goes to the
# real cargo ($STEPUP_REAL_CARGO, default `cargo`).
set -eu
if [ "${1:-}" = run ]; then
  shift
  bin=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --bin) bin="${2:-}"; shift 2 ;;
      --bin=*) bin="${1#--bin=}"; shift ;;
      --) shift; break ;;
      *) shift ;;
    esac
  done
  exe="${STEPUP_PREBUILT_DIR:?STEPUP_PREBUILT_DIR not set}/$bin"
  if [ -z "$bin" ] || [ ! -x "$exe" ]; then
    echo "prebuilt-cargo.sh: no prebuilt binary '$exe' (run --bin <function> expected)" >&2
    exit 1
  fi
  exec "$exe" "$@"
fi
exec "${STEPUP_REAL_CARGO:-cargo}" "$@"
