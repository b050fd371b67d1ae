#!/usr/bin/env bash
# HTTP serving vs in-process, side by side in one run on the same work: for each concurrency, `glm4-actor bench`
# (engine in-process) and `glm4-actor serve` driven by tools/loadgen over loopback; prints a markdown table with
# output tok/s, TTFT, ITL and the ratio served / in-process.
#   compare_http.sh MODEL_DIR "1:8 16:64 64:128" [INPUT_LEN] [OUTPUT_LEN] [THREADS]
# (each entry is concurrency:num_prompts). Both sides use serve's scheduler defaults (8192 batched tokens per step).
# Needs build/glm4-actor and build/test-venv (scripts/test_venv.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
model=$1
runs=${2:-"1:8 16:64 64:128"}
input_len=${3:-128}
output_len=${4:-128}
threads=${5:-$(nproc)}
python=build/test-venv/bin/python
[[ -x $python ]] || bash scripts/test_venv.sh build/test-venv

source scripts/lib/serve_in_background.sh
serve_in_background --model "$model" --port 0 --threads "$threads" --max-num-seqs 64 --max-queued-requests 1024
url=$server_url

echo "| concurrency | prompts | in-process tok/s | served tok/s | served / in-process | served TTFT p50/p99 ms | served ITL p50/p99 ms | served req/s |"
echo "|---|---|---|---|---|---|---|---|"
for run in $runs; do
  concurrency=${run%%:*}
  num_prompts=${run##*:}
  local_json=$(build/glm4-actor bench --model "$model" --num-prompts "$num_prompts" --concurrency "$concurrency" \
    --input-len "$input_len" --output-len "$output_len" --threads "$threads" \
    --max-num-batched-tokens 8192 --json)
  # A short warm-up so the served run, like bench, starts with scratch buffers allocated.
  "$python" tools/loadgen/loadgen.py --base-url "$url" --num-prompts 1 --concurrency 1 --input-len 8 \
    --output-len 2 --json >/dev/null
  served_json=$("$python" tools/loadgen/loadgen.py --base-url "$url" --num-prompts "$num_prompts" \
    --concurrency "$concurrency" --input-len "$input_len" --output-len "$output_len" --json)
  "$python" - "$concurrency" "$num_prompts" "$local_json" "$served_json" <<'PY'
import json, sys
c, n, local, served = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
if served["errors"]:
    sys.exit(f"served run had {served['errors']} errors: {served['first_errors']}")
served = {k: float("nan") if v is None else v for k, v in served.items()}
ratio = served["output_throughput"] / local["output_tok_per_s"]
print(f"| {c} | {n} | {local['output_tok_per_s']:.1f} | {served['output_throughput']:.1f} | {ratio:.2f} | "
      f"{served['ttft_ms_p50']:.1f} / {served['ttft_ms_p99']:.1f} | {served['itl_ms_p50']:.1f} / {served['itl_ms_p99']:.1f} | "
      f"{served['request_throughput']:.2f} |")
PY
done
