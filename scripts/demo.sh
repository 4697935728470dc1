#!/bin/sh
# README's run command: install what is missing, build, then run picoflow on
# its embedded defaults — picoflowd with a state directory and socket of its
# own under ./.state — submit an example, run it with --follow, and show
# status and logs. The daemon is stopped at the end.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh

state="$PWD/.state"
mkdir -p "$state"
sock="$state/run/picoflowd.sock"
d=build/picoflowd/picoflowd
ctl="build/picoflowctl/picoflowctl --socket $sock"

echo
echo "== picoflowctl validate examples/*.yaml"
$ctl validate examples/*.yaml

echo
echo "== picoflowd --socket $sock --state-dir $state/db (log: $state/picoflowd.log)"
$d --socket "$sock" --state-dir "$state/db" 2>"$state/picoflowd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT INT TERM
# Wait for the socket to answer (at most 10 s).
i=0
until $ctl daemon version >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -lt 100 ] || { echo "picoflowd did not start:"; cat "$state/picoflowd.log"; exit 1; }
  sleep 0.1
done

echo
echo "== picoflowctl submit examples/diamond.yaml examples/retry.yaml"
$ctl submit examples/diamond.yaml examples/retry.yaml
echo
echo "== picoflowctl run diamond --follow"
$ctl run diamond --follow
echo
echo "== picoflowctl run retry-demo --follow"
$ctl run retry-demo --follow
echo
echo "== picoflowctl status"
$ctl status
echo
echo "== picoflowctl logs retry-demo --task flaky"
$ctl logs retry-demo --task flaky
echo
echo "== next fire times of examples/scheduled.yaml's daily schedule"
$ctl cron "30 6 * * *" --tz Europe/Berlin -n 3
