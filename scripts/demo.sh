#!/usr/bin/env bash
# The main command: installs dependencies, builds glm4-actor, writes the tiny demo model, generates a reply
# in-process, then serves the model over HTTP and streams a chat reply with curl (SSE), and stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh glm4-actor
model_dir=${GLM4_DEMO_MODEL:-demo-model}
port=${GLM4_DEMO_PORT:-8000}
prompt=${1:-Hello! Tell me about GLM-4.}
if [[ ! -f "$model_dir/config.json" ]]; then
  build/glm4-actor make-model --preset tiny --layout glm --dtype bf16 --seed 1 --out "$model_dir"
fi

echo "== glm4-actor generate (in-process)"
build/glm4-actor generate --model "$model_dir" --chat --prompt "$prompt" --max-tokens 64 --seed 7

echo "== glm4-actor serve on port $port, then a streamed chat completion with curl"
source scripts/lib/serve_in_background.sh
serve_in_background --model "$model_dir" --port "$port" --served-model-name glm-4-demo
cat "$server_log/err" "$server_log/out"
body=$(python3 -c 'import json,sys; print(json.dumps({"model": "glm-4-demo", "stream": True, "max_tokens": 48, "seed": 7,
  "messages": [{"role": "user", "content": sys.argv[1]}]}))' "$prompt")
curl -sS -N "$server_url/chat/completions" -H "Content-Type: application/json" -d "$body"
echo "== done; to keep serving: build/glm4-actor serve --model $model_dir --served-model-name glm-4-demo"
