"""Raw sockets and http.client against a real glm4-actor server: malformed input, limits, errors, disconnects,
back-pressure (429) and shutdown. After every abuse the server must still serve."""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading

import pytest

from e2e_util import (ABORTS, RawStream, assert_error, assert_serving, completion, connect, http_head, metrics,
                      parse_response, post_json, read_until_close, request, wait_for, wait_idle)

MAX_BODY = 8 << 20
LONG = 3000  # output tokens of a request that must still be running when the test acts (about 3 s on one thread)


def raw_exchange(server, data: bytes) -> bytes:
    """Sends data and reads until the server closes (or resets) the connection."""
    with connect(server, timeout=30) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before it has read everything
        return read_until_close(sock)


def raw_request(server, method, path, body: bytes = b"", headers=None):
    headers = {"Content-Type": "application/json", "Connection": "close", **(headers or {})}
    return parse_response(raw_exchange(server, http_head(server, method, path, headers, len(body)) + body))


# ---------------------------------------------------------------------------------------------------------------
# Malformed HTTP


@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9 extra\r\n\r\n",
    b"GET\r\n\r\n",
    b"POST /v1/completions\r\n\r\n",
    b"GET /health HTTP/1.1\r\nNo-Colon-Here\r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
], ids=["word", "bad-version", "no-target", "no-version", "header-no-colon", "negative-length", "huge-length"])
def test_malformed_request_line(server, data):
    resp = parse_response(raw_exchange(server, data))
    assert resp.status in (400, 413), resp
    assert_error(resp, resp.status)
    assert_serving(server)


@pytest.mark.parametrize("seed", [0, 1])
def test_garbage_bytes(server, seed):
    rng = random.Random(seed)
    data = bytes(range(256)) * 4 if seed == 0 else bytes(rng.getrandbits(8) for _ in range(64 << 10))
    raw = raw_exchange(server, data)
    # Either a 400 error or a closed connection; never a hang (read_until_close has a deadline) or a crash.
    if raw:
        assert_error(parse_response(raw), 400)
    assert_serving(server)


def test_invalid_utf8_in_json(server):
    for body in [b'{"model":"tiny","prompt":"\xff\xfe\xc3","max_tokens":2}',
                 b'{"model":"tiny","messages":[{"role":"user","content":"ok \xc3\x28 bad"}],"max_tokens":2}',
                 b'{"model":"tiny\xed\xa0\x80","prompt":"a"}']:  # a UTF-16 surrogate encoded in UTF-8
        path = "/v1/chat/completions" if b"messages" in body else "/v1/completions"
        assert_error(raw_request(server, "POST", path, body), 400)
    assert_serving(server)


@pytest.mark.parametrize("body", [b"[" * 10000, b'{"a":' * 10000, b'{"model":"tiny","prompt":' + b"[" * 10000 +
                                  b"]" * 10000 + b"}"], ids=["arrays", "objects", "in-prompt"])
def test_deeply_nested_json(server, body):
    assert_error(raw_request(server, "POST", "/v1/completions", body), 400)
    assert_serving(server)


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b'"text"', b"42", b'{"model":', b"{} {}", b"\x00\x01"])
def test_not_a_json_object(server, body):
    assert_error(raw_request(server, "POST", "/v1/chat/completions", body), 400)
    assert_serving(server)


def test_wrong_content_type(server):
    body = json.dumps({"model": server.name, "prompt": "a", "max_tokens": 2}).encode()
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]:
        err = assert_error(raw_request(server, "POST", "/v1/completions", body, {"Content-Type": content_type}), 415)
        assert err["type"] == "invalid_request_error"
    ok = raw_request(server, "POST", "/v1/completions", body, {"Content-Type": "application/json; charset=utf-8"})
    assert ok.status == 200, ok
    assert_serving(server)


def test_oversized_body_413(server):
    # The server must answer from the headers alone, without waiting for (or reading) a body it will refuse.
    head = http_head(server, "POST", "/v1/completions", {"Content-Type": "application/json"}, MAX_BODY + 1)
    err = assert_error(parse_response(raw_exchange(server, head)), 413)
    assert err["message"]

    # The same for a chunked body that grows past the limit.
    with connect(server, timeout=30) as sock:
        sock.sendall(http_head(server, "POST", "/v1/completions",
                               {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, None))
        try:
            for _ in range(9):
                sock.sendall(b"%x\r\n" % (1 << 20) + b"a" * (1 << 20) + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert_error(parse_response(read_until_close(sock)), 413)

    # http.client with a real body just over the limit: 413 or a reset while sending, never a hang.
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request("POST", "/v1/completions", body=b"{" + b" " * MAX_BODY + b"}",
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 413, resp.status
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        conn.close()

    # Exactly at the limit the body is read and judged: here a prompt far over max_model_len (400, not 413).
    pre, post = b'{"model":"tiny","max_tokens":1,"prompt":"', b'"}'
    body = pre + b"a b " * ((MAX_BODY - len(pre) - len(post)) // 4) + post
    body = body[:-len(post)] + b" " * (MAX_BODY - len(body)) + post
    assert len(body) == MAX_BODY
    assert_error(raw_request(server, "POST", "/v1/completions", body), 400)
    assert_serving(server)


def test_oversized_headers_431(server):
    big = raw_request(server, "GET", "/health", headers={"X-Big": "a" * (100 << 10)})
    assert_error(big, 431)
    many = {f"X-H{i}": "v" * 100 for i in range(2000)}
    assert_error(raw_request(server, "GET", "/health", headers=many), 431)
    long_target = raw_exchange(server, b"GET /" + b"a" * (100 << 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert parse_response(long_target).status in (414, 431)
    assert_serving(server)


@pytest.mark.parametrize("method,path", [("GET", "/v1/completions"), ("GET", "/v1/chat/completions"),
                                         ("DELETE", "/v1/models"), ("POST", "/health"), ("PUT", "/metrics"),
                                         ("GET", "/tokenize")])
def test_wrong_method_405(server, method, path):
    resp = request(server, method, path, body={} if method != "GET" else None)
    assert_error(resp, 405)
    assert_serving(server)


@pytest.mark.parametrize("method,path", [("GET", "/"), ("GET", "/nope"), ("POST", "/v1/nope"),
                                         ("GET", "/v1/models/extra/parts"), ("POST", "/v2/completions")])
def test_unknown_route_404(server, method, path):
    resp = request(server, method, path, body={} if method == "POST" else None)
    assert_error(resp, 404)
    assert_serving(server)


def test_keep_alive_across_errors(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        for body, status in [(b'{"model":', 400), (b'{"model":"tiny","prompt":"a","max_tokens":2}', 200),
                             (b'{"model":"nope","prompt":"a"}', 404),
                             (b'{"model":"tiny","prompt":"a","max_tokens":2}', 200)]:
            conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            payload = resp.read()
            assert resp.status == status, payload
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------------------------
# Client disconnects: the request is aborted and its KV blocks are freed.


def send(server, path, obj, timeout=30) -> socket.socket:
    body = json.dumps(obj).encode()
    sock = connect(server, timeout=timeout)
    sock.sendall(http_head(server, "POST", path, {"Content-Type": "application/json"}, len(body)) + body)
    return sock


def open_stream(server, max_tokens=LONG, path="/v1/completions", **fields) -> RawStream:
    """A raw streaming request that must be accepted (200, text/event-stream)."""
    body = {"model": server.name, "prompt": "tell me everything", "max_tokens": max_tokens, "ignore_eos": True,
            "stream": True, "temperature": 1.0, "seed": 3, **fields}
    stream = RawStream(send(server, path, {k: v for k, v in body.items() if v is not None}))
    assert stream.status == 200, stream.reader.read1(2000)
    assert stream.headers.get("content-type", "").startswith("text/event-stream"), stream.headers
    return stream


def assert_aborted_and_freed(server, aborts_before, count=1):
    wait_for(lambda: metrics(server)[ABORTS] >= aborts_before + count, 30, "the abort counter to increase")
    m = wait_idle(server)
    assert m[ABORTS] == aborts_before + count


def check_disconnect_while_streaming(server):
    """A client that leaves mid-stream has its request aborted and its blocks freed; the server goes on."""
    wait_idle(server)
    aborts = metrics(server)[ABORTS]
    generated = metrics(server)["glm4_generation_tokens_total"]
    stream = open_stream(server)
    stream.read_events(3)
    m = metrics(server)
    assert m["glm4_requests_running"] == 1 and m["glm4_kv_cache_usage_ratio"] > 0, m
    stream.close()
    assert_aborted_and_freed(server, aborts)
    assert metrics(server)["glm4_generation_tokens_total"] - generated < LONG, "the request ran to its end"
    assert_serving(server)


def test_disconnect_while_streaming(server):
    check_disconnect_while_streaming(server)


def test_disconnect_while_streaming_with_reset(server):
    wait_idle(server)
    aborts = metrics(server)[ABORTS]
    stream = open_stream(server)
    stream.read_events(2)
    stream.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
    stream.close()
    assert_aborted_and_freed(server, aborts)
    assert_serving(server)


def test_disconnect_before_non_streamed_reply(server):
    wait_idle(server)
    aborts = metrics(server)[ABORTS]
    generated = metrics(server)["glm4_generation_tokens_total"]
    sock = send(server, "/v1/completions", {"model": server.name, "prompt": "tell me everything",
                                            "max_tokens": LONG, "ignore_eos": True, "temperature": 1.0, "seed": 4})

    def running():
        m = metrics(server)
        return m["glm4_requests_running"] == 1 and m["glm4_kv_cache_usage_ratio"] > 0

    wait_for(running, 30, "the request to run")
    sock.close()
    assert_aborted_and_freed(server, aborts)
    assert metrics(server)["glm4_generation_tokens_total"] - generated < LONG, "the request ran to its end"
    assert_serving(server)


def test_disconnect_chat_stream_with_n2(server):
    wait_idle(server)
    aborts = metrics(server)[ABORTS]
    stream = open_stream(server, path="/v1/chat/completions", prompt=None,
                         messages=[{"role": "user", "content": "go"}], n=2, seed=5)
    stream.read_events(4)
    stream.close()
    # One abort per request or per choice: either way it increases, and everything is freed.
    wait_for(lambda: metrics(server)[ABORTS] > aborts, 30, "the abort counter to increase")
    wait_idle(server)
    assert_serving(server)


# ---------------------------------------------------------------------------------------------------------------
# Back-pressure: a full waiting queue answers 429 with Retry-After.


@pytest.fixture(scope="module")
def small_server(server_factory):
    return server_factory("--max-queued-requests", "1", "--max-num-seqs", "1")


def gauge(server, name, value):
    return wait_for(lambda: metrics(server)[name] == value, 30, f"{name} == {value}")


def assert_429(resp):
    err = assert_error(resp, 429)
    retry = resp.headers.get("Retry-After") or resp.headers.get("retry-after")
    assert retry is not None and retry.isdigit(), resp.headers
    return err


def test_queue_full_429(small_server):
    srv = small_server
    wait_idle(srv)
    # One request runs (max-num-seqs 1) ...
    running = open_stream(srv)
    running.read_events(1)
    gauge(srv, "glm4_requests_running", 1)
    # ... one waits (max-queued-requests 1) ...
    waiting_result = {}

    def waiting_request():
        waiting_result["resp"] = post_json(srv, "/v1/completions", {"model": srv.name, "prompt": "hi",
                                                                    "max_tokens": 8, "ignore_eos": True})

    waiter = threading.Thread(target=waiting_request)
    waiter.start()
    gauge(srv, "glm4_requests_waiting", 1)
    # ... so the next ones are refused, streamed or not, chat or not.
    assert_429(post_json(srv, "/v1/completions", {"model": srv.name, "prompt": "hi", "max_tokens": 4}))
    assert_429(post_json(srv, "/v1/completions", {"model": srv.name, "prompt": "hi", "max_tokens": 4,
                                                  "stream": True}))
    assert_429(post_json(srv, "/v1/chat/completions", {"model": srv.name, "max_tokens": 4,
                                                       "messages": [{"role": "user", "content": "x"}]}))
    # Non-generating routes are not queued.
    assert request(srv, "GET", "/health").status == 200
    assert request(srv, "GET", "/v1/models").status == 200
    # The running one goes away (client disconnect), the waiting one runs and completes.
    running.close()
    waiter.join(timeout=60)
    assert not waiter.is_alive()
    resp = waiting_result["resp"]
    assert resp.status == 200, resp
    assert resp.json()["usage"]["completion_tokens"] == 8
    wait_idle(srv)
    completion(srv, max_tokens=2)


def test_disconnect_while_queued(small_server):
    srv = small_server
    wait_idle(srv)
    aborts = metrics(srv)[ABORTS]
    running = open_stream(srv)
    running.read_events(1)
    queued = send(srv, "/v1/completions", {"model": srv.name, "prompt": "queued", "max_tokens": 8})
    gauge(srv, "glm4_requests_waiting", 1)
    queued.close()
    gauge(srv, "glm4_requests_waiting", 0)
    assert metrics(srv)["glm4_requests_running"] == 1
    running.close()
    assert_aborted_and_freed(srv, aborts, count=2)


def test_concurrent_burst_some_429_rest_complete(small_server):
    srv = small_server
    wait_idle(srv)
    count = 6
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(i):
        barrier.wait(timeout=30)
        results[i] = post_json(srv, "/v1/completions", {"model": srv.name, "prompt": "burst", "max_tokens": 400,
                                                        "ignore_eos": True, "seed": i})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(not t.is_alive() for t in threads)
    refused = [r for r in results if r.status == 429]
    done = [r for r in results if r.status == 200]
    assert len(refused) >= 1, results
    assert len(refused) + len(done) == count, results
    for r in refused:
        assert_429(r)
    for r in done:
        assert r.json()["usage"]["completion_tokens"] == 400
    wait_idle(srv)


# ---------------------------------------------------------------------------------------------------------------
# Shutdown


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly(server_factory, sig):
    import signal as signals
    srv = server_factory()
    completion(srv, max_tokens=2)
    srv._signalled = True
    srv.proc.send_signal(getattr(signals, sig))
    assert srv.stop() == 0


def check_sigterm_with_a_stream_in_flight(srv):
    """SIGTERM with a stream running exits 0, and the stream ends (the connection closes) rather than hanging."""
    stream = open_stream(srv)
    stream.read_events(1)
    assert srv.stop() == 0
    while stream.next_data() is not None:
        pass
    stream.close()


def test_sigterm_with_a_stream_in_flight(server_factory):
    check_sigterm_with_a_stream_in_flight(server_factory())
