"""A server whose cluster.toml lays the model over two pipeline stages of two tensor-parallel CPU ranks answers like
the one-device server (the same greedy text for the same requests, streamed and not, run together), frees a
disconnected client's blocks, and stops cleanly on SIGTERM with a stream in flight."""

from __future__ import annotations

import asyncio

import pytest

from test_concurrency import client_for, run_one
from test_raw_http import check_disconnect_while_streaming, check_sigterm_with_a_stream_in_flight
from e2e_util import wait_idle

# No [model]: the server's --model names the checkpoint, as with vLLM's `serve MODEL`.
LAYOUT = """
[[stage]]
devices = ["cpu:0", "cpu:1"]
num_threads = 1

[[stage]]
devices = ["cpu:2", "cpu:3"]
num_threads = 1
"""


@pytest.fixture(scope="module")
def layout_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("layout") / "cluster.toml"
    path.write_text(LAYOUT)
    return path


@pytest.fixture(scope="module")
def sharded(server_factory, layout_file):
    return server_factory("--config", str(layout_file))


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


def test_two_stages_of_two_ranks_serve_the_one_device_text(server, sharded):
    assert any("layers 0..2 on 2 x cpu" in line for line in sharded.log_tail(80).splitlines()), sharded.log_tail()
    want = asyncio.run(run_all(server, 8))
    got = asyncio.run(run_all(sharded, 8))
    for i, (a, b) in enumerate(zip(want, got)):
        assert (b["text"], b["finish"], b["usage"]) == (a["text"], a["finish"], a["usage"]), i
    wait_idle(sharded)


def test_disconnect_frees_blocks_on_every_rank(sharded):
    check_disconnect_while_streaming(sharded)


def test_sigterm_with_a_stream_in_flight_stops_every_rank(server_factory, layout_file):
    check_sigterm_with_a_stream_in_flight(server_factory("--config", str(layout_file)))
