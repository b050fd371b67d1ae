#!/usr/bin/env bash
# Single-sequence speed, side by side in one run: glm4-actor generate vs transformers on the same
# checkpoint, prompt and token count. Usage: compare_generate.sh MODEL_DIR [MAX_TOKENS] [THREADS]
# Needs build/glm4-actor and the fixtures venv (tools/fixtures/make_fixtures.sh creates it).
set -euo pipefail
cd "$(dirname "$0")/../.."
model=$1
max_tokens=${2:-64}
threads=${3:-$(nproc)}
python=tools/fixtures/.venv/bin/python
prompt="The lighthouse keeper climbed the stairs every evening, counting each step as the storm rolled in from the sea, and wondered whether the ships would see his light tonight."

ours=$(build/glm4-actor generate --model "$model" --prompt "$prompt" --temperature 0 --ignore-eos \
  --max-tokens "$max_tokens" --threads "$threads" 2>&1 >/dev/null)
prefill=$(sed -n 's/^prefill: \([0-9]*\) tokens in .* (\([0-9.]*\) tok\/s)$/\2/p' <<<"$ours")
decode=$(sed -n 's/^decode: \([0-9]*\) tokens in .* (\([0-9.]*\) tok\/s).*$/\2/p' <<<"$ours")
peer=$("$python" tools/bench/transformers_peer.py --model "$model" --prompt "$prompt" \
  --max-tokens "$max_tokens" --threads "$threads")
"$python" - "$prefill" "$decode" "$peer" <<'PY'
import json, sys
prefill, decode, peer = float(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
print(f"| | glm4-actor | {peer['peer']} | ratio |")
print("|---|---|---|---|")
print(f"| prefill tok/s ({peer['prompt_tokens']} tokens) | {prefill:.1f} | {peer['prefill_tok_s']:.1f} | {prefill / peer['prefill_tok_s']:.2f}x |")
print(f"| decode tok/s ({peer['decode_steps']} steps) | {decode:.1f} | {peer['decode_tok_s']:.1f} | {decode / peer['decode_tok_s']:.2f}x |")
PY
