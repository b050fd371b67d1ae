"""A server whose cluster.toml lays the model over two pipeline stages of two tensor-parallel CPU ranks answers like
the one-device server: the same greedy text for the same requests, streamed and not, run together."""

from __future__ import annotations

import asyncio

from test_concurrency import client_for, run_one
from e2e_util import wait_idle

LAYOUT = """
[model]
path = "{model_dir}"

[[stage]]
devices = ["cpu:0", "cpu:1"]
num_threads = 1

[[stage]]
devices = ["cpu:2", "cpu:3"]
num_threads = 1
"""


def greedy_request(server, i: int, stream: bool) -> tuple[str, dict]:
    body = {"model": server.name, "max_tokens": 12, "temperature": 0, "stream": stream, "logprobs": True}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if i % 2:
        return "/v1/chat/completions", {**body, "messages": [{"role": "user", "content": f"question {i} " * (i + 1)}]}
    del body["logprobs"]
    return "/v1/completions", {**body, "prompt": f"prompt {i} " * (i + 1)}


async def run_all(server, n: int) -> list[dict]:
    async with client_for(server, n) as client:
        return await asyncio.gather(*(run_one(client, *greedy_request(server, i, stream=i % 3 != 0)) for i in range(n)))


def test_two_stages_of_two_ranks_serve_the_one_device_text(server, server_factory, tmp_path):
    config = tmp_path / "cluster.toml"
    config.write_text(LAYOUT.format(model_dir=server.model_dir))
    sharded = server_factory("--config", str(config))
    want = asyncio.run(run_all(server, 8))
    got = asyncio.run(run_all(sharded, 8))
    for i, (a, b) in enumerate(zip(want, got)):
        assert (b["text"], b["finish"], b["usage"]) == (a["text"], a["finish"], a["usage"]), i
    wait_idle(sharded)
