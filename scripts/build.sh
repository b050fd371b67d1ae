#!/usr/bin/env bash
# Configures (once) and builds into build/ with Ninja and ccache. Extra arguments are ninja targets.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${GLM4_BUILD_DIR:-build}
jobs=${GLM4_JOBS:-$(nproc)}
if [[ ! -f "$build_dir/build.ninja" ]]; then
  cmake -S . -B "$build_dir" -G Ninja ${GLM4_CMAKE_ARGS:-}
fi
cmake --build "$build_dir" -j "$jobs" ${1:+--target "$@"}
