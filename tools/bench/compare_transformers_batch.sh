#!/usr/bin/env bash
# Under concurrent load, side by side in one run on the same checkpoint and the same work: `glm4-actor bench`
# (continuous batching, CONCURRENCY requests in flight) vs transformers `generate` on batches of CONCURRENCY
# requests (tools/bench/transformers_generate_peer.py, device_map auto), every request INPUT_LEN random ids in
# and exactly OUTPUT_LEN greedy tokens out. Prints a markdown table with output tok/s, mean TTFT and the ratio.
#   compare_transformers_batch.sh MODEL_DIR PYTHON [CONCURRENCY] [NUM_PROMPTS] [INPUT_LEN] [OUTPUT_LEN] [PEER_DTYPE]
# PYTHON has torch, transformers and accelerate (tools/fixtures/.venv/bin/python here; python3 on the GPU machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
model=$1
python=$2
concurrency=${3:-16}
num_prompts=${4:-32}
input_len=${5:-128}
output_len=${6:-64}
peer_dtype=${7:-bfloat16}

ours=$(build/glm4-actor bench --model "$model" --num-prompts "$num_prompts" --concurrency "$concurrency" \
  --input-len "$input_len" --output-len "$output_len" --json 2>/dev/null)
peer=$("$python" tools/bench/transformers_generate_peer.py --model "$model" --batch "$concurrency" \
  --num-prompts "$num_prompts" --input-len "$input_len" --output-len "$output_len" --dtype "$peer_dtype" 2>/dev/null)
python3 - "$concurrency" "$num_prompts" "$ours" "$peer" <<'PY'
import json, sys
c, n, ours, peer = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
print(f"peer: {peer['peer']} on {peer['device']}")
print("| concurrency | prompts | glm4-actor tok/s | transformers tok/s | ratio | glm4-actor TTFT p50 ms | transformers TTFT mean ms |")
print("|---|---|---|---|---|---|---|")
print(f"| {c} | {n} | {ours['output_tok_per_s']:.2f} | {peer['output_tok_per_s']:.2f} | "
      f"{ours['output_tok_per_s'] / peer['output_tok_per_s']:.2f} | {ours['ttft_ms_p50']:.0f} | {peer['ttft_ms_mean']:.0f} |")
PY
