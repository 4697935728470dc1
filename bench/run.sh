#!/bin/sh
# Builds an optimised release in build-bench and runs the benchmarks, writing
# bench/results.md. `--quick` runs fewer repeats.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
repeats=15
[ "${1:-}" = "--quick" ] && repeats=5
if [ ! -f build-bench/build.ninja ]; then
  meson setup build-bench --buildtype=minsize -Db_lto=true -Dtests=false >/dev/null
fi
ninja -C build-bench -j2 bench/load_bench picoflowd/picoflowd picoflowctl/picoflowctl >/dev/null

load=$(build-bench/bench/load_bench "$repeats")
echo "$load"
median10k=$(echo "$load" | awk '$1 == 10000 {print $3}')
met=$(awk -v m="$median10k" 'BEGIN {print (m <= 100) ? "met" : "not met"}')
strip_size() { cp "$1" /tmp/picoflow-strip.$$ && strip /tmp/picoflow-strip.$$ && stat -c %s /tmp/picoflow-strip.$$ && rm -f /tmp/picoflow-strip.$$; }
d_size=$(strip_size build-bench/picoflowd/picoflowd)
c_size=$(strip_size build-bench/picoflowctl/picoflowctl)

{
  echo "# picoflow benchmark results"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f MiB", $2/1024}' /proc/meminfo), $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "Date: $(date -u +%Y-%m-%dT%H:%M:%SZ); build: meson minsize (-Os) + LTO + --gc-sections, g++ $(g++ -dumpfullversion)"
  echo
  echo "## Workflow load (load + validate + DAG, from text in memory; $repeats repeats)"
  echo
  echo "| tasks | bytes | median ms | min ms |"
  echo "|---|---|---|---|"
  echo "$load" | awk 'NR > 1 {printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}'
  echo
  echo "| figure | value | target | verdict |"
  echo "|---|---|---|---|"
  echo "| load 10,000 tasks (median) | ${median10k} ms | <= 100 ms | $met |"
  echo "| stripped picoflowd | $d_size bytes | <= 1.5 MB | $(awk -v s="$d_size" 'BEGIN {print (s <= 1572864) ? "met" : "not met"}') |"
  echo "| stripped picoflowctl | $c_size bytes | - | - |"
} > bench/results.md
cat bench/results.md
