"""The official `openai` Python client against a real glm4-actor server: every call shape it makes must work."""

from __future__ import annotations

import math

import openai
import pytest

from e2e_util import metrics, request, wait_idle

CHAT = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Tell me a story."}]
PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.api_base, api_key="unused", max_retries=0, timeout=60)


def chat(client, server, **kwargs):
    args = {"model": server.name, "messages": CHAT, "max_tokens": 16, "temperature": 1.0, "seed": 7}
    args.update(kwargs)
    return client.chat.completions.create(**args)


def complete(client, server, **kwargs):
    args = {"model": server.name, "prompt": PROMPT, "max_tokens": 16, "temperature": 1.0, "seed": 7}
    args.update(kwargs)
    return client.completions.create(**args)


def collect_chat_stream(stream, n=1):
    """Concatenated deltas per choice index, finish reasons, the usage chunk (or None), chunk count."""
    texts, finish, usage, roles, chunks = [""] * n, [None] * n, None, [None] * n, 0
    for chunk in stream:
        chunks += 1
        assert chunk.object == "chat.completion.chunk"
        if not chunk.choices:
            assert usage is None, "two usage chunks"
            usage = chunk.usage
            continue
        assert usage is None, "a choice chunk after the usage chunk"
        assert chunk.usage is None
        for choice in chunk.choices:
            assert finish[choice.index] is None, f"choice {choice.index} continued after its finish_reason"
            if choice.delta.role is not None:
                assert roles[choice.index] is None and texts[choice.index] == "", "role not on the first chunk"
                roles[choice.index] = choice.delta.role
            texts[choice.index] += choice.delta.content or ""
            finish[choice.index] = choice.finish_reason
    assert roles == ["assistant"] * n, roles
    return texts, finish, usage, chunks


def collect_completion_stream(stream, n=1):
    texts, finish, usage = [""] * n, [None] * n, None
    for chunk in stream:
        assert chunk.object == "text_completion"
        if not chunk.choices:
            assert usage is None, "two usage chunks"
            usage = chunk.usage
            continue
        assert usage is None, "a choice chunk after the usage chunk"
        for choice in chunk.choices:
            assert finish[choice.index] is None, f"choice {choice.index} continued after its finish_reason"
            texts[choice.index] += choice.text
            finish[choice.index] = choice.finish_reason
    return texts, finish, usage


def assert_usage(usage, prompt_tokens=None, completion_tokens=None):
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage
    assert usage.prompt_tokens > 0
    if prompt_tokens is not None:
        assert usage.prompt_tokens == prompt_tokens, usage
    if completion_tokens is not None:
        assert usage.completion_tokens == completion_tokens, usage


def tokenize(server, **body):
    resp = request(server, "POST", "/tokenize", body={"model": server.name, **body})
    assert resp.status == 200, resp
    return resp.json()


def test_models_list(client, server):
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny"] == [server.name]
    assert models.data[0].object == "model"


def test_chat_non_streamed(client, server):
    out = chat(client, server)
    assert out.object == "chat.completion"
    assert out.model == server.name
    assert len(out.choices) == 1
    choice = out.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason == "length"
    prompt_tokens = tokenize(server, messages=CHAT)["count"]
    assert_usage(out.usage, prompt_tokens=prompt_tokens, completion_tokens=16)


def test_completion_non_streamed(client, server):
    out = complete(client, server)
    assert out.object == "text_completion"
    assert out.model == server.name
    assert out.choices[0].finish_reason == "length"
    assert_usage(out.usage, prompt_tokens=tokenize(server, prompt=PROMPT)["count"], completion_tokens=16)


def test_max_completion_tokens(client, server):
    out = chat(client, server, max_tokens=None, max_completion_tokens=5)
    assert out.usage.completion_tokens == 5 and out.choices[0].finish_reason == "length"


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_stream_matches_non_streamed(client, server, seed, include_usage):
    whole = chat(client, server, seed=seed)
    options = {"include_usage": True} if include_usage else None
    texts, finish, usage, chunks = collect_chat_stream(
        chat(client, server, seed=seed, stream=True, stream_options=options))
    assert texts[0] == whole.choices[0].message.content
    assert finish[0] == whole.choices[0].finish_reason == "length"
    assert chunks >= 2
    if include_usage:
        assert usage == whole.usage
    else:
        assert usage is None


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("include_usage", [False, True])
def test_completion_stream_matches_non_streamed(client, server, seed, include_usage):
    whole = complete(client, server, seed=seed)
    options = {"include_usage": True} if include_usage else None
    texts, finish, usage = collect_completion_stream(
        complete(client, server, seed=seed, stream=True, stream_options=options))
    assert texts[0] == whole.choices[0].text
    assert finish[0] == whole.choices[0].finish_reason
    if include_usage:
        assert usage == whole.usage
    else:
        assert usage is None


def test_seed_reproducible_and_distinct(client, server):
    a = complete(client, server, seed=11, max_tokens=24).choices[0].text
    b = complete(client, server, seed=11, max_tokens=24).choices[0].text
    c = complete(client, server, seed=12, max_tokens=24).choices[0].text
    assert a == b
    assert a != c


def test_prompt_as_token_ids(client, server):
    ids = tokenize(server, prompt=PROMPT)["tokens"]
    by_text = complete(client, server, seed=5)
    by_ids = complete(client, server, seed=5, prompt=ids)
    assert by_ids.choices[0].text == by_text.choices[0].text
    assert by_ids.usage == by_text.usage


def test_n2(client, server):
    out = chat(client, server, n=2, seed=21)
    assert sorted(c.index for c in out.choices) == [0, 1]
    assert out.choices[0].message.content != out.choices[1].message.content, "n=2 sampled the same text twice"
    assert_usage(out.usage, completion_tokens=32)
    texts, finish, usage, _ = collect_chat_stream(
        chat(client, server, n=2, seed=21, stream=True, stream_options={"include_usage": True}), n=2)
    assert texts == [c.message.content for c in sorted(out.choices, key=lambda c: c.index)]
    assert finish == ["length", "length"]
    assert usage == out.usage

    comp = complete(client, server, n=2, seed=21)
    assert sorted(c.index for c in comp.choices) == [0, 1]
    assert_usage(comp.usage, completion_tokens=32)
    texts, _, _ = collect_completion_stream(complete(client, server, n=2, seed=21, stream=True), n=2)
    assert texts == [c.text for c in sorted(comp.choices, key=lambda c: c.index)]


def _stop_candidate(text: str):
    """A short printable ASCII piece of text after its start, or None."""
    for i in range(1, len(text) - 1):
        piece = text[i:i + 2]
        if piece.isascii() and piece.strip() == piece and piece.isprintable() and piece.isalnum():
            return piece
    return None


def test_stop_strings(client, server):
    for seed in range(100, 140):
        full = complete(client, server, seed=seed, max_tokens=48).choices[0].text
        stop = _stop_candidate(full)
        if stop:
            break
    else:
        pytest.fail("no seed gave an ASCII stop candidate")
    expected = full[:full.index(stop)]
    out = complete(client, server, seed=seed, max_tokens=48, stop=[stop, "\x00never"])
    assert out.choices[0].text == expected
    assert out.choices[0].finish_reason == "stop"
    texts, finish, _ = collect_completion_stream(
        complete(client, server, seed=seed, max_tokens=48, stop=stop, stream=True))
    assert texts[0] == expected and finish[0] == "stop"


def test_stop_string_chat(client, server):
    for seed in range(200, 240):
        full = chat(client, server, seed=seed, max_tokens=48).choices[0].message.content
        stop = _stop_candidate(full)
        if stop:
            break
    else:
        pytest.fail("no seed gave an ASCII stop candidate")
    out = chat(client, server, seed=seed, max_tokens=48, stop=stop)
    assert out.choices[0].message.content == full[:full.index(stop)]
    assert out.choices[0].finish_reason == "stop"


def test_chat_logprobs(client, server):
    out = chat(client, server, logprobs=True, top_logprobs=3, max_tokens=8)
    content = out.choices[0].logprobs.content
    assert len(content) == out.usage.completion_tokens == 8
    text = b""
    for entry in content:
        assert entry.logprob <= 0 and math.isfinite(entry.logprob)
        assert len(entry.top_logprobs) == 3
        tops = [t.logprob for t in entry.top_logprobs]
        assert tops == sorted(tops, reverse=True)
        assert entry.logprob <= tops[0] + 1e-5
        assert entry.bytes is not None
        text += bytes(entry.bytes)
    # The token bytes spell the message (the message replaces invalid UTF-8 the same way).
    assert text.decode("utf-8", "replace") == out.choices[0].message.content

    # Greedy: the chosen token is the most likely one.
    greedy = chat(client, server, logprobs=True, top_logprobs=2, max_tokens=8, temperature=0)
    for entry in greedy.choices[0].logprobs.content:
        assert entry.logprob == pytest.approx(entry.top_logprobs[0].logprob, abs=1e-5)

    plain = chat(client, server, max_tokens=4)
    assert plain.choices[0].logprobs is None


def test_completion_logprobs(client, server):
    out = complete(client, server, logprobs=2, max_tokens=8, temperature=0)
    lp = out.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 8
    assert lp.text_offset[0] == 0 and lp.text_offset == sorted(lp.text_offset)
    for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        # Two tokens may decode to the same text, so the dict can hold fewer entries, and a key's value can be
        # that of a less likely token with the same text; greedy still means nothing listed beats the chosen one.
        assert 1 <= len(top) <= 2
        assert token in top
        assert logprob >= max(top.values()) - 1e-5


def test_extensions_via_extra_body(client, server):
    out = complete(client, server, max_tokens=12, extra_body={
        "top_k": 5, "min_p": 0.01, "repetition_penalty": 1.1, "min_tokens": 12, "ignore_eos": True})
    assert out.usage.completion_tokens == 12
    penalized = complete(client, server, max_tokens=12, presence_penalty=0.5, frequency_penalty=0.5)
    assert penalized.usage.completion_tokens == 12
    # A +100 bias makes token 5 all but certain at every step.
    biased = complete(client, server, max_tokens=6, logit_bias={"5": 100})
    resp = request(server, "POST", "/detokenize", body={"model": server.name, "tokens": [5] * 6})
    assert resp.status == 200, resp
    assert biased.choices[0].text == resp.json()["prompt"]
    banned = complete(client, server, max_tokens=6, temperature=0, logit_bias={"5": -100}, logprobs=1)
    greedy = complete(client, server, max_tokens=6, temperature=0)
    assert banned.usage.completion_tokens == greedy.usage.completion_tokens == 6


def test_bad_request_names_the_param(client, server):
    cases = [({"temperature": -1}, "temperature"), ({"top_p": 2}, "top_p"), ({"n": 0}, "n"),
             ({"max_tokens": -1}, "max_tokens"), ({"presence_penalty": 5}, "presence_penalty"),
             ({"top_logprobs": 50, "logprobs": True}, "top_logprobs")]
    for kwargs, param in cases:
        with pytest.raises(openai.BadRequestError) as info:
            chat(client, server, **kwargs)
        assert info.value.status_code == 400
        assert info.value.param == param, (kwargs, info.value.body)
        assert info.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=server.name, messages=[], max_tokens=2)
    assert info.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as info:
        complete(client, server, prompt=[99999])
    assert info.value.param.startswith("prompt")


def test_unknown_model_is_not_found(client, server):
    with pytest.raises(openai.NotFoundError) as info:
        chat(client, server, model="no-such-model")
    assert info.value.status_code == 404 and info.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        complete(client, server, model="no-such-model", stream=True)


def test_api_key(server_factory):
    keyed = server_factory(api_key="sk-e2e-secret")
    wrong = openai.OpenAI(base_url=keyed.api_base, api_key="sk-wrong", max_retries=0, timeout=30)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.chat.completions.create(model=keyed.name, messages=CHAT, max_tokens=2)
    assert info.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()

    # Without any Authorization header, on every route except /health.
    for method, path, body in [("GET", "/v1/models", None), ("GET", "/metrics", None),
                               ("POST", "/v1/completions", {"model": keyed.name, "prompt": "a"}),
                               ("POST", "/tokenize", {"model": keyed.name, "prompt": "a"})]:
        resp = request(keyed, method, path, body=body, auth=False)
        assert resp.status == 401, (path, resp)
        assert resp.json()["error"]["message"]
    assert request(keyed, "GET", "/health", auth=False).status == 200

    right = openai.OpenAI(base_url=keyed.api_base, api_key="sk-e2e-secret", max_retries=0, timeout=30)
    out = right.chat.completions.create(model=keyed.name, messages=CHAT, max_tokens=2)
    assert out.usage.completion_tokens == 2
    assert [m.id for m in right.models.list().data] == [keyed.name]


def test_metrics_after_client_calls(server):
    m = wait_idle(server)
    assert m['glm4_request_success_total{finish_reason="length"}'] > 0
    assert m["glm4_prompt_tokens_total"] > 0 and m["glm4_generation_tokens_total"] > 0
    assert m["glm4_e2e_request_latency_seconds_count"] >= m['glm4_request_success_total{finish_reason="length"}']
    assert metrics(server)["glm4_requests_running"] == 0
