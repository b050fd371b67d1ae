#!/usr/bin/env bash
# Tensor-parallel CPU ranks vs one rank, side by side in one run on the same work and the same cores: for each
# concurrency, `glm4-actor bench --through-actors` with tp 1 (all THREADS in one rank) and `--tp TP` (THREADS / TP
# per rank); prints a markdown table with output tok/s, TTFT, ITL and the ratio tp / tp 1.
#   compare_tp.sh MODEL_DIR "1:2 16:16" [INPUT_LEN] [OUTPUT_LEN] [THREADS] [TP]
# (each entry is concurrency:num_prompts).
set -euo pipefail
cd "$(dirname "$0")/../.."
model=$1
runs=${2:-"1:2 16:16"}
input_len=${3:-32}
output_len=${4:-32}
threads=${5:-$(nproc)}
tp=${6:-2}

bench() {
  build/glm4-actor bench --model "$model" --num-prompts "$2" --concurrency "$1" --input-len "$input_len" \
    --output-len "$output_len" --threads "$threads" --through-actors --tp "$3" --json
}

echo "| concurrency | prompts | tp 1 tok/s | tp $tp tok/s | tp $tp / tp 1 | tp 1 TTFT p50 ms | tp $tp TTFT p50 ms | tp 1 ITL p50 ms | tp $tp ITL p50 ms |"
echo "|---|---|---|---|---|---|---|---|---|"
for run in $runs; do
  concurrency=${run%%:*}
  num_prompts=${run##*:}
  one=$(bench "$concurrency" "$num_prompts" 1)
  many=$(bench "$concurrency" "$num_prompts" "$tp")
  python3 - "$concurrency" "$num_prompts" "$one" "$many" <<'PY'
import json, sys
c, n, one, many = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
ratio = many["output_tok_per_s"] / one["output_tok_per_s"]
print(f"| {c} | {n} | {one['output_tok_per_s']:.2f} | {many['output_tok_per_s']:.2f} | {ratio:.2f} | "
      f"{one['ttft_ms_p50']:.0f} | {many['ttft_ms_p50']:.0f} | {one['itl_ms_p50']:.1f} | {many['itl_ms_p50']:.1f} |")
PY
done
