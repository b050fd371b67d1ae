#!/usr/bin/env bash
# The main command: installs dependencies, builds glm4-actor, writes the tiny demo model and generates a reply.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh glm4-actor
model_dir=${GLM4_DEMO_MODEL:-demo-model}
if [[ ! -f "$model_dir/config.json" ]]; then
  build/glm4-actor make-model --preset tiny --layout glm --dtype bf16 --seed 1 --out "$model_dir"
fi
build/glm4-actor generate --model "$model_dir" --chat --prompt "${1:-Hello! Tell me about GLM-4.}" \
  --max-tokens 64 --seed 7
