"""[server] request_timeout_s: a generation still running when it expires is aborted, its KV blocks are freed, and
the client gets an error naming the limit (an SSE error event when streaming, a 500 error object otherwise)."""

from __future__ import annotations

import pytest

from test_raw_http import LONG, open_stream
from e2e_util import ABORTS, assert_serving, metrics, post_json, wait_idle

TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def timed(server_factory, tmp_path_factory):
    config = tmp_path_factory.mktemp("timeout") / "cluster.toml"
    config.write_text(f"[server]\nrequest_timeout_s = {TIMEOUT_S}\n")
    return server_factory("--config", str(config))


def test_a_stream_past_the_timeout_ends_with_an_error_event(timed):
    wait_idle(timed)
    stream = open_stream(timed, max_tokens=LONG)
    events = []
    while (data := stream.next_data()) is not None:
        events.append(data)
    stream.close()
    assert events[-1] == "[DONE]", events[-3:]
    assert "request_timeout_s (0.5 s)" in events[-2], events[-2]
    assert '"error"' in events[-2]
    m = wait_idle(timed)
    assert m["glm4_generation_tokens_total"] < LONG
    assert_serving(timed)


def test_a_whole_reply_past_the_timeout_is_an_error_object(timed):
    resp = post_json(timed, "/v1/completions", {"model": timed.name, "prompt": "go on", "max_tokens": LONG,
                                                 "ignore_eos": True})
    assert resp.status == 500, resp
    assert "request_timeout_s" in resp.json()["error"]["message"]
    wait_idle(timed)


def test_a_short_request_finishes_normally(timed):
    # ignore_eos: an unseeded draw may otherwise pick a stop id of the random model and finish with "stop".
    resp = post_json(timed, "/v1/completions", {"model": timed.name, "prompt": "hi", "max_tokens": 2, "ignore_eos": True})
    assert resp.status == 200, resp
    assert resp.json()["choices"][0]["finish_reason"] == "length"
