#!/usr/bin/env python3
"""The usual alternative, measured: transformers greedy generation on the same checkpoint and prompt.

Prints one JSON line: prompt and generated token counts, prefill and decode tokens per second.
Run with the fixtures venv: tools/fixtures/.venv/bin/python tools/bench/transformers_peer.py --model DIR ...
"""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.dtype))
    model.eval()
    # add_special_tokens puts GLM-4's [gMASK]<sop> in front, as glm4-actor generate does.
    input_ids = tokenizer(args.prompt, return_tensors="pt", add_special_tokens=True).input_ids

    with torch.inference_mode():
        start = time.perf_counter()
        out = model(input_ids=input_ids, use_cache=True)
        prefill_seconds = time.perf_counter() - start
        cache = out.cache
        next_id = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        start = time.perf_counter()
        for _ in range(args.max_tokens - 1):
            out = model(input_ids=next_id, cache=cache, use_cache=True)
            cache = out.cache
            next_id = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        decode_seconds = time.perf_counter() - start

    num_prompt = input_ids.shape[1]
    num_decode = args.max_tokens - 1
    print(json.dumps({
        "peer": f"transformers {__import__('transformers').__version__} torch {torch.__version__} {args.dtype}",
        "threads": torch.get_num_threads(),
        "prompt_tokens": num_prompt,
        "prefill_tok_s": num_prompt / prefill_seconds,
        "decode_steps": num_decode,
        "decode_tok_s": num_decode / decode_seconds,
    }))


if __name__ == "__main__":
    main()
