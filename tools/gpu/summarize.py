#!/usr/bin/env python3
"""Issue 7's figures from what tools/gpu/session.sh left in its output folder, as markdown for docs/benchmarks.md.

    python3 tools/gpu/summarize.py OUT_DIR --model /tmp/g9b      (on the GPU machine: the weights' bytes from the files)
    python3 tools/gpu/summarize.py OUT_DIR                       (anywhere: OUT_DIR/weight_bytes.txt, which session.sh
                                                                 writes after make-model)
    python3 tools/gpu/summarize.py OUT_DIR --weight-bytes N

First whether the GPU tests passed, then the issue's targets: output tok/s at concurrency 1 and 64 against transformers `generate` (at least 1.2x and
10x), TTFT, and batch-1 decode against the bound that reading every weight once per token at the measured
device bandwidth sets (at least 75%). Then our own settings side by side, each as variant / baseline. A figure
whose file is missing or unreadable reads "missing": session.sh logs why in session.txt.
"""
import argparse
import json
from pathlib import Path


def read_json_lines(path: Path) -> list:
    """Every JSON object of a file (bench prints one, the peer one per batch size); [] when there is none."""
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip().startswith("{")]
    except (OSError, ValueError):
        return []


def read_one(out: Path, name: str):
    rows = read_json_lines(out / name)
    return rows[0] if rows else None


def number(value, digits: int = 1) -> str:
    return "missing" if value is None else f"{value:.{digits}f}"


def ratio(variant, baseline) -> str:
    return "missing" if variant is None or baseline in (None, 0) else f"{variant / baseline:.2f}x"


def field(row, key):
    return None if row is None else row.get(key)


def weight_bytes_of(model_dir: Path) -> int:
    return sum(path.stat().st_size for path in model_dir.glob("*.safetensors"))


def recorded_weight_bytes(out: Path):
    try:
        return int((out / "weight_bytes.txt").read_text().strip())
    except (OSError, ValueError):
        return None


def device_line(out: Path) -> str:
    try:
        lines = [line.strip() for line in (out / "gpu.txt").read_text().splitlines() if line.strip()]
    except OSError:
        return "missing"
    return lines[-1] if len(lines) > 1 else "missing"


def test_result(out: Path, name: str) -> str:
    """ctest's "N% tests passed, M tests failed out of K" line of a log session.sh kept, or missing."""
    try:
        lines = [line.strip() for line in (out / name).read_text().splitlines() if "tests passed" in line]
    except OSError:
        return "missing"
    return lines[-1] if lines else "missing"


def headline(out: Path, weight_bytes) -> list:
    ours_c1, ours_c64 = read_one(out, "ours_c1.json"), read_one(out, "ours_c64.json")
    peers = {row.get("batch"): row for row in read_json_lines(out / "peer.json")}
    peer_c1, peer_c64 = peers.get(1), peers.get(64)
    lines = ["| figure | glm4-actor | transformers generate | ratio | target | met |", "|---|---|---|---|---|---|"]
    for label, ours, peer, target in (("output tok/s, concurrency 1", ours_c1, peer_c1, 1.2),
                                      ("output tok/s, concurrency 64", ours_c64, peer_c64, 10.0)):
        mine, theirs = field(ours, "output_tok_per_s"), field(peer, "output_tok_per_s")
        met = "missing" if mine is None or not theirs else ("yes" if mine / theirs >= target else "no")
        lines.append(f"| {label} | {number(mine)} | {number(theirs)} | {ratio(mine, theirs)} | >= {target:g}x | {met} |")
    lines.append(f"| TTFT p50 / p99 ms, concurrency 64 | {number(field(ours_c64, 'ttft_ms_p50'))} / "
                 f"{number(field(ours_c64, 'ttft_ms_p99'))} | mean {number(field(peer_c64, 'ttft_ms_mean'))} | | | |")

    itl = field(ours_c1, "itl_ms_p50")
    decode = 1000.0 / itl if itl else None
    bandwidth = field(read_one(out, "bandwidth.json"), "read_gb_s")
    bound = bandwidth * 1e9 / weight_bytes if bandwidth and weight_bytes else None
    share = "missing" if decode is None or bound is None else f"{100.0 * decode / bound:.1f}% of the bound"
    met = "missing" if share == "missing" else ("yes" if decode / bound >= 0.75 else "no")
    lines.append(f"| decode tok/s at batch 1 (1000 / inter-token p50) | {number(decode)} | bound {number(bound)} "
                 f"({number(bandwidth)} GB/s read / {number(weight_bytes and weight_bytes / 1e9, 2)} GB of weights) "
                 f"| {share} | >= 75% | {met} |")
    return lines


# (what is compared, baseline file, variant file, JSON field); each row reads variant / baseline.
SIDE_BY_SIDE = [
    ("CUDA graphs, concurrency 1: output tok/s", "ours_c1.json", "ours_c1_graphs.json", "output_tok_per_s"),
    ("CUDA graphs, concurrency 1: inter-token p50 ms", "ours_c1.json", "ours_c1_graphs.json", "itl_ms_p50"),
    ("CUDA graphs, concurrency 64: output tok/s", "ours_c64.json", "ours_c64_graphs.json", "output_tok_per_s"),
    ("matvec for small batches (GLM4_CUDA_MATMUL), concurrency 1: output tok/s", "ours_c1.json",
     "ours_c1_matvec.json", "output_tok_per_s"),
    ("matvec for small batches, concurrency 1: inter-token p50 ms", "ours_c1.json", "ours_c1_matvec.json",
     "itl_ms_p50"),
    ("matvec and CUDA graphs, concurrency 1: output tok/s", "ours_c1.json", "ours_c1_matvec_graphs.json",
     "output_tok_per_s"),
    ("per-head attention, concurrency 1: output tok/s", "ours_c1.json", "ours_c1_per_head.json", "output_tok_per_s"),
    ("per-head attention, concurrency 64: output tok/s", "ours_c64.json", "ours_c64_per_head.json", "output_tok_per_s"),
    ("per-head attention, 4,096-token prompts: TTFT p50 ms", "ours_long_grouped.json", "ours_long_per_head.json",
     "ttft_ms_p50"),
    ("F32 KV cache, concurrency 64: output tok/s", "ours_c64.json", "ours_c64_kv_f32.json", "output_tok_per_s"),
    ("F32 KV cache, 4,096-token prompts: inter-token p50 ms", "ours_long_kv_bfloat16.json",
     "ours_long_kv_float32.json", "itl_ms_p50"),
    ("sampled on the host, concurrency 64, temperature 0.8: output tok/s", "ours_c64_sampled_device.json",
     "ours_c64_sampled_host.json", "output_tok_per_s"),
    ("logprobs (20 top) by the host sampler, concurrency 64: output tok/s", "ours_c64_logprobs_device.json",
     "ours_c64_logprobs_host.json", "output_tok_per_s"),
    ("logprobs (20 top) by the backend vs none, concurrency 64: output tok/s", "ours_c64.json",
     "ours_c64_logprobs_device.json", "output_tok_per_s"),
    ("through actors, concurrency 64: output tok/s", "ours_c64.json", "ours_c64_actors.json", "output_tok_per_s"),
]


def side_by_side(out: Path) -> list:
    lines = ["| comparison | baseline | variant | variant / baseline |", "|---|---|---|---|"]
    for label, baseline_file, variant_file, key in SIDE_BY_SIDE:
        baseline, variant = field(read_one(out, baseline_file), key), field(read_one(out, variant_file), key)
        lines.append(f"| {label} | {number(baseline)} | {number(variant)} | {ratio(variant, baseline)} |")
    return lines


def summarize(out: Path, weight_bytes) -> str:
    ours = read_one(out, "ours_c1.json")
    lines = [f"GPU: {device_line(out)}; ours: {field(ours, 'backend') or 'missing'}; "
             f"peer: {field(next(iter(read_json_lines(out / 'peer.json')), None), 'peer') or 'missing'}",
             f"GPU tests (ctest -L gpu): {test_result(out, 'gpu_tests.log')}; again with the per-head attention "
             f"kernel: {test_result(out, 'gpu_tests_per_head.log')}",
             "", *headline(out, weight_bytes), "", *side_by_side(out)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="session.sh's output folder ($OUT)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--model", type=Path, help="the benchmarked checkpoint: its *.safetensors bytes")
    weights.add_argument("--weight-bytes", type=int, help="bytes of weights a decode step reads")
    args = parser.parse_args()
    if args.weight_bytes:
        weight_bytes = args.weight_bytes
    elif args.model:
        weight_bytes = weight_bytes_of(args.model)
    else:
        weight_bytes = recorded_weight_bytes(args.out)
    print(summarize(args.out, weight_bytes), end="")


if __name__ == "__main__":
    main()
