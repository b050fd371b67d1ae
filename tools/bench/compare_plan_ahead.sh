#!/usr/bin/env bash
# Planning ahead vs not, and both vs the engine called directly, side by side in one run on the same work and
# cores: ROUNDS rounds, each running the three modes back to back (in-process engine, actors without planning
# ahead, actors planning ahead), so machine drift hits all three alike. Prints every round's output tok/s and the
# medians as a markdown table, then the ratios paired within each round and their medians.
#   compare_plan_ahead.sh MODEL_DIR [CONCURRENCY] [NUM_PROMPTS] [INPUT_LEN] [OUTPUT_LEN] [THREADS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
model=$1
concurrency=${2:-16}
num_prompts=${3:-64}
input_len=${4:-128}
output_len=${5:-128}
threads=${6:-$(nproc)}
rounds=${7:-5}

bench() {
  build/glm4-actor bench --model "$model" --num-prompts "$num_prompts" --concurrency "$concurrency" \
    --input-len "$input_len" --output-len "$output_len" --threads "$threads" --json "$@" 2>/dev/null
}

results=()
for ((round = 0; round < rounds; ++round)); do
  results+=("$(bench)" "$(bench --through-actors --plan-ahead off)" "$(bench --through-actors --plan-ahead on)")
done
python3 - "$concurrency" "$rounds" "${results[@]}" <<'PY'
import json, statistics, sys
concurrency, rounds = sys.argv[1], int(sys.argv[2])
runs = [json.loads(r) for r in sys.argv[3:]]
modes = ["engine in-process", "actors, no planning ahead", "actors, planning ahead"]
tok = {m: [runs[3 * r + i]["output_tok_per_s"] for r in range(rounds)] for i, m in enumerate(modes)}
itl = {m: [runs[3 * r + i]["itl_ms_p50"] for r in range(rounds)] for i, m in enumerate(modes)}
med = {m: statistics.median(v) for m, v in tok.items()}
print("| mode | output tok/s per round | median | median ITL p50 ms | / engine in-process |")
print("|---|---|---|---|---|")
for m in modes:
    rounds_text = " ".join(f"{v:.4g}" for v in tok[m])
    print(f"| {m} | {rounds_text} | {med[m]:.4g} | {statistics.median(itl[m]):.2f} | {med[m] / med[modes[0]]:.3f} |")
# Paired within each round, the ratios shrug off drift between rounds better than the medians do.
paired = [a / b for a, b in zip(tok[modes[2]], tok[modes[1]])]
paired_engine = [a / b for a, b in zip(tok[modes[2]], tok[modes[0]])]
print(f"\nat concurrency {concurrency}: planning ahead / not, per round: " + " ".join(f"{r:.2f}" for r in paired) +
      f"; median {statistics.median(paired):.3f}")
print(f"planning ahead / engine in-process, per round: " + " ".join(f"{r:.2f}" for r in paired_engine) +
      f"; median {statistics.median(paired_engine):.3f}")
PY
