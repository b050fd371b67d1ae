#!/usr/bin/env bash
# The test command: installs dependencies, builds everything (CUDA too when nvcc is present) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
cd "${GLM4_BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" --timeout 1200
