#!/bin/sh
# README's run command: install what is missing, build, and run picoflow on its
# embedded defaults.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
ctl=build/picoflowctl/picoflowctl
echo
echo "== picoflowctl validate examples/*.yaml"
$ctl validate examples/*.yaml
echo
echo "== next fire times of examples/scheduled.yaml's daily schedule"
$ctl cron "30 6 * * *" --tz Europe/Berlin -n 3
