#!/usr/bin/env python3
"""The usual alternative under load: transformers `generate` on a batch of requests, as a FastAPI server
around it would run them (issue 7's peer: device_map="auto", BF16).

Each request is `--input-len` random token ids (seeded, drawn as glm4-actor bench draws its prompts: ids
from the vocabulary's lower half) and generates exactly `--output-len` greedy tokens. `--batch` requests
run as one padded batch; `--num-prompts` of them run batch after batch. Prints one JSON line with output
tok/s and the mean time to the first token (a batch's prefill, which every request in it waits for).
`--batch 1,64` measures each size in turn over one load of the model, one JSON line each.
"""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", default="1",
                        help="requests generated together (the concurrency); a comma list measures each in turn")
    parser.add_argument("--num-prompts", type=int, default=0, help="requests in all, per batch size (0: one batch)")
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--device-map", default="auto", help='"auto" (accelerate places the layers), "cpu", "cuda:0"')
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.dtype), device_map=args.device_map)
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(args.seed)
    vocab = model.config.vocab_size

    def run_batch(size: int, output_len: int) -> float:
        ids = torch.randint(1, max(2, vocab // 2), (size, args.input_len), generator=generator).to(device)
        mask = torch.ones_like(ids)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=output_len,
                                 min_new_tokens=output_len, do_sample=False, pad_token_id=0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        assert out.shape[1] == args.input_len + output_len, out.shape
        return time.perf_counter() - start

    run_batch(1, 2)  # warm-up: kernels, allocator
    for batch in [int(size) for size in args.batch.split(",")]:
        num_prompts = args.num_prompts or batch
        total_seconds = first_token_seconds = 0.0
        done = 0
        while done < num_prompts:
            size = min(batch, num_prompts - done)
            first_token_seconds += run_batch(size, 1) * size  # the prefill alone: when the batch's first tokens exist
            total_seconds += run_batch(size, args.output_len)
            done += size
        print(json.dumps({
            "peer": f"transformers {__import__('transformers').__version__} torch {torch.__version__} generate, "
                    f"{args.dtype}, device_map={args.device_map}",
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "batch": batch,
            "num_prompts": num_prompts,
            "input_len": args.input_len,
            "output_len": args.output_len,
            "output_tok_per_s": num_prompts * args.output_len / total_seconds,
            "ttft_ms_mean": 1000.0 * first_token_seconds / num_prompts,
        }), flush=True)


if __name__ == "__main__":
    main()
