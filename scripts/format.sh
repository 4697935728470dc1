#!/bin/sh
# Lays out every C++ file of the tree as .clang-format says (clang-format 14,
# Debian 12; tests/format_test.py checks the same files).
set -eu
cd "$(dirname "$0")/.."
find common protocol picoflowd picoflowctl tests bench fuzz -path tests/compat -prune -o \
  \( -name '*.h' -o -name '*.cc' \) -print | xargs clang-format -i --style=file
