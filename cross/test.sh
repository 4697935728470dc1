#!/bin/sh
# Cross-builds picoflow for ARCH (cross/build.sh) and runs its tests under
# qemu-user, closing with "N passed, N failed" read from meson's test log:
#   cross/test.sh armhf|aarch64                every test
#   cross/test.sh armhf|aarch64 --suite unit   what CI runs
# Further arguments go to `meson test`.
set -eu
cd "$(dirname "$0")/.."

arch=${1:-}
case "$arch" in
  armhf|aarch64) shift ;;
  *) echo "usage: cross/test.sh armhf|aarch64 [MESON-TEST-ARGS...]" >&2; exit 2 ;;
esac

cross/build.sh "$arch"

# meson runs the test executables through the cross file's exe_wrapper; the
# harnesses that start picoflowd / picoflowctl / cron_oracle themselves (there
# is no binfmt registration) read the same command from this variable.
wrapper=$(sed -n "s/^exe_wrapper *= *\[\(.*\)\]/\1/p" "cross/$arch.txt" | tr -d "'," )
[ -n "$wrapper" ] || { echo "cross/$arch.txt: no exe_wrapper" >&2; exit 1; }
emulator=$(command -v "${wrapper%% *}") || { echo "${wrapper%% *} not found" >&2; exit 1; }
case "$wrapper" in
  *" "*) PICOFLOW_TEST_EXEC_WRAPPER="$emulator ${wrapper#* }" ;;
  *) PICOFLOW_TEST_EXEC_WRAPPER=$emulator ;;
esac
export PICOFLOW_TEST_EXEC_WRAPPER

# Emulation is several times slower than the native runs the timeouts in
# tests/meson.build were chosen for.
status=0
meson test -C "build-$arch" --num-processes 2 --print-errorlogs --timeout-multiplier 4 "$@" ||
  status=$?
python3 scripts/count-tests.py "build-$arch/meson-logs/testlog.json"
exit $status
