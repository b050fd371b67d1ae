"""Many requests at once against a real glm4-actor server: seeded outputs do not depend on what else runs, a bounded
load run has no errors, and afterwards nothing is left running, waiting or holding KV blocks."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx

from e2e_util import ABORTS, metrics, wait_idle

LOADGEN = Path(__file__).resolve().parents[2] / "tools" / "loadgen" / "loadgen.py"
SUCCESS = "glm4_request_success_total"


def make_request(server, i: int, stream: bool, max_tokens: int = 16):
    """Request i: chat or completion, its own seed and prompt length, a mix of sampling settings."""
    words = " ".join(f"w{j}" for j in range(i % 13 + 1))
    body = {"model": server.name, "max_tokens": max_tokens, "temperature": 1.0, "seed": 1000 + i, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if i % 4 == 1:
        body["top_p"] = 0.9
    if i % 4 == 2:
        body["top_k"] = 20
    if i % 8 == 3:
        body["presence_penalty"] = 0.5
        body["repetition_penalty"] = 1.2
    if i % 2:
        return "/v1/chat/completions", {**body, "messages": [{"role": "user", "content": f"request {i}: {words}"}]}
    return "/v1/completions", {**body, "prompt": f"request {i}: {words}"}


async def run_one(client: httpx.AsyncClient, path: str, body: dict) -> dict:
    """Text, finish reason and usage of one request, streamed or not; raises on any protocol error."""
    if not body["stream"]:
        resp = await client.post(path, json=body)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        out = resp.json()
        choice = out["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
        return {"text": text, "finish": choice["finish_reason"], "usage": out["usage"]}
    text, finish, usage, done = "", None, None, False
    async with client.stream("POST", path, json=body) as resp:
        assert resp.status_code == 200, (resp.status_code, await resp.aread())
        async for line in resp.aiter_lines():
            if not line:
                continue
            assert line.startswith("data: "), line
            data = line[len("data: "):]
            if data == "[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if not chunk["choices"]:
                usage = chunk["usage"]
                continue
            assert usage is None, "choice chunk after the usage chunk"
            choice = chunk["choices"][0]
            assert finish is None, "chunk after finish_reason"
            text += (choice["delta"].get("content") or "") if "delta" in choice else choice["text"]
            finish = choice["finish_reason"]
    assert done, "no data: [DONE]"
    assert usage is not None, "no usage chunk"
    return {"text": text, "finish": finish, "usage": usage}


def client_for(server, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, timeout=httpx.Timeout(120.0, connect=30.0),
                             limits=httpx.Limits(max_connections=connections,
                                                 max_keepalive_connections=connections))


def test_64_parallel_streams_match_solo_runs(server):
    count = 64
    requests = [make_request(server, i, stream=True) for i in range(count)]

    async def main():
        async with client_for(server, count + 1) as client:
            solo = [await run_one(client, path, body) for path, body in requests]
            peak = 0
            finished = asyncio.Event()

            async def watch():  # the most requests /metrics saw running at once
                nonlocal peak
                while not finished.is_set():
                    resp = await client.get("/metrics")
                    for line in resp.text.splitlines():
                        if line.startswith("glm4_requests_running "):
                            peak = max(peak, float(line.split()[1]))
                    await asyncio.sleep(0.01)

            watcher = asyncio.create_task(watch())
            together = await asyncio.gather(*(run_one(client, path, body) for path, body in requests))
            finished.set()
            await watcher
        return solo, together, peak

    solo, together, peak = asyncio.run(main())
    assert peak >= 2, "the requests never ran together"
    mismatches = [i for i in range(count) if solo[i] != together[i]]
    assert not mismatches, [(i, solo[i], together[i]) for i in mismatches[:3]]
    for out in together:
        assert out["usage"]["total_tokens"] == out["usage"]["prompt_tokens"] + out["usage"]["completion_tokens"]
        assert 1 <= out["usage"]["completion_tokens"] <= 16
        assert out["finish"] in ("length", "stop")
    wait_idle(server)


def test_bounded_load_run(server):
    total, concurrency = 200, 32
    wait_idle(server)
    before = metrics(server)

    async def main():
        queue = list(range(total))
        results = []
        async with client_for(server, concurrency) as client:
            async def worker():
                while queue:
                    i = queue.pop()
                    path, body = make_request(server, 500 + i, stream=bool(i % 3), max_tokens=8 + i % 9)
                    results.append(await run_one(client, path, body))
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return results

    results = asyncio.run(main())
    assert len(results) == total
    after = wait_idle(server)
    assert after["glm4_requests_running"] == 0
    assert after["glm4_requests_waiting"] == 0
    assert after["glm4_kv_cache_usage_ratio"] == 0
    assert after[ABORTS] == before[ABORTS]

    # The counters moved by exactly what the responses report.
    def finished(m):
        return sum(v for k, v in m.items() if k.startswith(SUCCESS + "{"))
    assert finished(after) - finished(before) == total
    prompt = sum(r["usage"]["prompt_tokens"] for r in results)
    generated = sum(r["usage"]["completion_tokens"] for r in results)
    assert after["glm4_prompt_tokens_total"] - before["glm4_prompt_tokens_total"] == prompt
    assert after["glm4_generation_tokens_total"] - before["glm4_generation_tokens_total"] == generated
    assert (after["glm4_e2e_request_latency_seconds_count"] - before["glm4_e2e_request_latency_seconds_count"]
            == total)
    assert (after["glm4_time_to_first_token_seconds_count"] - before["glm4_time_to_first_token_seconds_count"]
            == total)


def test_loadgen_tool(server):
    wait_idle(server)
    result = subprocess.run(
        [sys.executable, str(LOADGEN), "--base-url", server.api_base, "--num-prompts", "24", "--concurrency", "8",
         "--input-len", "32", "--output-len", "12", "--seed", "3", "--json"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert report["errors"] == 0 and report["completed"] == 24, report
    assert report["total_output_tokens"] == 24 * 12
    assert report["total_input_tokens"] == 24 * 32
    for key in ("request_throughput", "output_throughput", "ttft_ms_p50", "ttft_ms_p99", "itl_ms_p50", "itl_ms_p99"):
        assert report[key] is not None and report[key] > 0, (key, report)
    assert report["ttft_ms_p50"] <= report["ttft_ms_p99"] and report["itl_ms_p50"] <= report["itl_ms_p99"]
    wait_idle(server)
