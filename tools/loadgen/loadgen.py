#!/usr/bin/env python3
"""HTTP load generator for glm4-actor (or any OpenAI-compatible server that takes token-id prompts).

Closed loop: keeps --concurrency streaming /v1/completions requests in flight until --num-prompts are done. Each
prompt is --input-len random token ids below --vocab-limit; each asks for exactly --output-len tokens (max_tokens,
min_tokens, ignore_eos; temperature 0), for the usage chunk and for logprobs 0 (so each token arrives as its own
chunk, even one with no text of its own). Reports request and output-token throughput, time
to first token and inter-token latency (gaps between streamed chunks) percentiles, and errors.

  python tools/loadgen/loadgen.py --base-url http://127.0.0.1:8000/v1 --num-prompts 200 --concurrency 32 \\
      --input-len 128 --output-len 128 [--json]

Exits 1 when any request failed. Needs httpx (scripts/test_venv.sh installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Result:
    ok: bool = False
    error: str = ""
    ttft: float = math.nan            # seconds from sending to the first choice chunk
    gaps: list = field(default_factory=list)  # seconds between consecutive choice chunks
    latency: float = math.nan         # seconds from sending to [DONE]
    prompt_tokens: int = 0
    output_tokens: int = 0


def percentile(values, q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


async def resolve_model(client: httpx.AsyncClient, base_url: str) -> str:
    resp = await client.get(f"{base_url}/models")
    resp.raise_for_status()
    return resp.json()["data"][0]["id"]


async def one_request(client: httpx.AsyncClient, url: str, body: dict) -> Result:
    result = Result()
    start = time.perf_counter()
    last = None
    done = False
    try:
        async with client.stream("POST", url, json=body) as resp:
            if resp.status_code != 200:
                text = (await resp.aread()).decode("utf-8", "replace")
                result.error = f"HTTP {resp.status_code}: {text[:200]}"
                return result
            async for line in resp.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[len("data: "):]
                if data == "[DONE]":
                    done = True
                    break
                now = time.perf_counter()
                chunk = json.loads(data)
                if "error" in chunk:
                    result.error = f"error event: {data[:200]}"
                    return result
                if chunk.get("choices"):
                    if last is None:
                        result.ttft = now - start
                    else:
                        result.gaps.append(now - last)
                    last = now
                usage = chunk.get("usage")
                if usage:
                    result.prompt_tokens = usage.get("prompt_tokens", 0)
                    result.output_tokens = usage.get("completion_tokens", 0)
    except (httpx.HTTPError, OSError, ValueError) as error:
        result.error = f"{type(error).__name__}: {error}"
        return result
    result.latency = time.perf_counter() - start
    if not done:
        result.error = "stream ended without [DONE]"
    elif last is None:
        result.error = "no choice chunk"
    elif result.output_tokens != body["max_tokens"]:
        result.error = f"usage says {result.output_tokens} output tokens, asked for {body['max_tokens']}"
    else:
        result.ok = True
    return result


async def run(args) -> dict:
    base_url = args.base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    timeout = httpx.Timeout(args.timeout, connect=30.0)
    rng = random.Random(args.seed)
    prompts = [[rng.randrange(args.vocab_limit) for _ in range(args.input_len)] for _ in range(args.num_prompts)]

    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout) as client:
        model = args.model or await resolve_model(client, base_url)
        url = f"{base_url}/completions"
        next_index = 0
        results: list[Result] = []

        async def worker():
            nonlocal next_index
            while next_index < len(prompts):
                prompt = prompts[next_index]
                next_index += 1
                body = {"model": model, "prompt": prompt, "max_tokens": args.output_len,
                        "min_tokens": args.output_len, "ignore_eos": True, "temperature": 0.0, "stream": True,
                        "stream_options": {"include_usage": True},
                        # The chosen token's logprob makes every token a chunk: a token whose text is
                        # empty or held back (partial UTF-8) would otherwise merge into the next one.
                        "logprobs": 0}
                results.append(await one_request(client, url, body))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(args.concurrency, len(prompts)))))
        duration = time.perf_counter() - start

    good = [r for r in results if r.ok]
    errors = [r.error for r in results if not r.ok]
    ttfts = [r.ttft * 1000 for r in good]
    itls = [g * 1000 for r in good for g in r.gaps]
    output_tokens = sum(r.output_tokens for r in good)
    return {
        "model": model,
        "num_prompts": args.num_prompts,
        "concurrency": args.concurrency,
        "input_len": args.input_len,
        "output_len": args.output_len,
        "completed": len(good),
        "errors": len(errors),
        "first_errors": errors[:5],
        "duration_s": duration,
        "request_throughput": len(good) / duration if duration > 0 else math.nan,
        "output_throughput": output_tokens / duration if duration > 0 else math.nan,
        "total_input_tokens": sum(r.prompt_tokens for r in good),
        "total_output_tokens": output_tokens,
        "ttft_ms_p50": percentile(ttfts, 50),
        "ttft_ms_p99": percentile(ttfts, 99),
        "itl_ms_p50": percentile(itls, 50),
        "itl_ms_p99": percentile(itls, 99),
        "e2e_ms_mean": sum(r.latency for r in good) * 1000 / len(good) if good else math.nan,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--num-prompts", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--input-len", type=int, required=True, help="prompt tokens per request")
    parser.add_argument("--output-len", type=int, required=True, help="output tokens per request")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random prompts")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--model", default=None, help="model name (default: the first of GET /models)")
    parser.add_argument("--vocab-limit", type=int, default=1000, help="prompt token ids are below this")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one request may take")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    for name in ("num_prompts", "concurrency", "input_len", "output_len", "vocab_limit"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")

    report = asyncio.run(run(args))
    if args.json:
        # NaN (no successful request) is not JSON: null instead.
        print(json.dumps({k: None if isinstance(v, float) and math.isnan(v) else v for k, v in report.items()},
                         allow_nan=False))
    else:
        print(f"model {report['model']}: {report['num_prompts']} prompts, concurrency {report['concurrency']}, "
              f"input {report['input_len']}, output {report['output_len']} tokens")
        print(f"  completed {report['completed']}, errors {report['errors']}, {report['duration_s']:.2f} s")
        print(f"  request throughput  {report['request_throughput']:.2f} req/s")
        print(f"  output throughput   {report['output_throughput']:.1f} tok/s")
        print(f"  TTFT p50/p99        {report['ttft_ms_p50']:.1f} / {report['ttft_ms_p99']:.1f} ms")
        print(f"  ITL  p50/p99        {report['itl_ms_p50']:.2f} / {report['itl_ms_p99']:.2f} ms")
        for error in report["first_errors"]:
            print(f"  error: {error}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
