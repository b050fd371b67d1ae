"""Helpers of the end-to-end tests: a glm4-actor server process, plain HTTP calls, /metrics, SSE parsing.

Nothing here sleeps to synchronise: every wait is on a real condition (a line, a response, a metric value) and
has a deadline.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

READY_RE = re.compile(r'^glm4-actor serve: ready: model "(?P<name>[^"]*)" at http://(?P<host>[^:/]+):(?P<port>\d+)/v1'
                      r'(?P<keyed> \(API key required\))?$')
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 60.0


def binary() -> str:
    """The glm4-actor executable under test: $GLM4_BINARY, else the default build directory."""
    path = os.environ.get("GLM4_BINARY")
    if not path:
        path = str(Path(__file__).resolve().parents[2] / "build" / "glm4-actor")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"glm4-actor binary not found or not executable: {path} (set GLM4_BINARY)")
    return path


def make_model(out_dir: Path) -> Path:
    """Writes the tiny random-weight model (a few MB, with a tokenizer) to out_dir."""
    result = subprocess.run(
        [binary(), "make-model", "--preset", "tiny", "--layout", "glm", "--dtype", "bf16", "--seed", "1", "--out",
         str(out_dir)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"make-model failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    assert (out_dir / "config.json").is_file() and (out_dir / "tokenizer.json").is_file()
    return out_dir


def _die_with_parent():
    """In the child before exec: SIGKILL it if the test process dies (so a crashed run leaves no server behind)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    """Polls predicate() until it returns something truthy (and returns that) or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")
        time.sleep(interval)


class Server:
    """One `glm4-actor serve` process on loopback with --port 0; the port comes from its ready line."""

    def __init__(self, model_dir: Path, log_path: Path, extra_args=(), threads: int = 1, api_key: str | None = None,
                 executable: str | None = None):
        self.model_dir = model_dir
        self.log_path = log_path
        self.api_key = api_key
        self.args = [executable or binary(), "serve", "--model", str(model_dir), "--host", "127.0.0.1", "--port", "0", "--threads",
                     str(threads), *extra_args]
        if api_key:
            self.args += ["--api-key", api_key]
        self.stdout_lines: list[str] = []
        self._signalled = False
        self.stopped = False
        self._lines: queue.Queue = queue.Queue()
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log,
                                     preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self.name, self.host, self.port = self._await_ready()
        self.base_url = f"http://{self.host}:{self.port}"
        self.api_base = self.base_url + "/v1"

    def _read_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)  # EOF: the process closed stdout (it exited)

    def log_tail(self, n: int = 40) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            lines = self.log_path.read_text("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def _await_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise AssertionError(f"no ready line within {READY_TIMEOUT_S:.0f} s from {self.args}\n"
                                     f"stdout: {self.stdout_lines}\nstderr:\n{self.log_tail()}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait(timeout=STOP_TIMEOUT_S)
                raise AssertionError(f"server exited ({code}) before its ready line: {self.args}\n"
                                     f"stdout: {self.stdout_lines}\nstderr:\n{self.log_tail()}")
            match = READY_RE.match(line)
            if match:
                assert bool(match["keyed"]) == bool(self.api_key), f"ready line does not match --api-key: {line!r}"
                return match["name"], match["host"], int(match["port"])

    def auth_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def terminate(self):
        """Sends SIGTERM once (a second one could cut a clean shutdown short)."""
        if not self._signalled and self.proc.poll() is None:
            self._signalled = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then waits for the exit; returns the exit code (SIGKILLs and raises if it hangs)."""
        self.stopped = True
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=max(timeout, 0.1))
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"server did not exit within {STOP_TIMEOUT_S:.0f} s of SIGTERM "
                                     f"(killed it)\nstderr:\n{self.log_tail()}")
        self._reader.join(timeout=STOP_TIMEOUT_S)
        self._log.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------------------------------------------
# Plain HTTP (http.client) helpers


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:300]!r}>"


def request(server: Server, method: str, path: str, body=None, headers=None, auth: bool = True,
            timeout: float = REQUEST_TIMEOUT_S) -> Response:
    all_headers = dict(server.auth_headers()) if auth else {}
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=all_headers)
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def post_json(server: Server, path: str, obj, **kwargs) -> Response:
    return request(server, "POST", path, body=obj, **kwargs)


def completion(server: Server, **fields) -> dict:
    """A non-streamed /v1/completions call that must succeed."""
    body = {"model": server.name, "prompt": "hello", "max_tokens": 4}
    body.update(fields)
    resp = post_json(server, "/v1/completions", body)
    assert resp.status == 200, resp
    return resp.json()


METRIC_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (?P<value>\S+)$")


def metrics(server: Server) -> dict[str, float]:
    """/metrics as {'name' or 'name{labels}': value}."""
    resp = request(server, "GET", "/metrics")
    assert resp.status == 200, resp
    assert resp.headers.get("Content-Type", "").startswith("text/plain"), resp.headers
    out = {}
    for line in resp.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        match = METRIC_LINE.match(line)
        assert match, f"malformed metrics line: {line!r}"
        out[match["name"]] = float(match["value"])
    return out


ABORTS = 'glm4_request_success_total{finish_reason="abort"}'


def wait_idle(server: Server, timeout: float = 30.0) -> dict[str, float]:
    """Waits until no request runs or waits and no KV block is in use; returns those metrics."""
    def idle():
        m = metrics(server)
        if (m["glm4_requests_running"] == 0 and m["glm4_requests_waiting"] == 0
                and m["glm4_kv_cache_usage_ratio"] == 0):
            return m
        return None
    return wait_for(idle, timeout, "requests_running, requests_waiting and kv_cache_usage_ratio to reach 0")


def assert_serving(server: Server):
    """The server still answers /health and a normal completion."""
    resp = request(server, "GET", "/health", auth=False)
    assert resp.status == 200 and resp.json() == {"status": "ok"}, resp
    out = completion(server, max_tokens=2, temperature=0)
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["usage"]["completion_tokens"] == 2


# ---------------------------------------------------------------------------------------------------------------
# Raw sockets


def connect(server: Server, timeout: float = REQUEST_TIMEOUT_S) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    return sock


def http_head(server: Server, method: str, path: str, headers: dict, body_len: int | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {server.host}:{server.port}"]
    lines += [f"{k}: {v}" for k, v in {**server.auth_headers(), **headers}.items()]
    if body_len is not None:
        lines.append(f"Content-Length: {body_len}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_until_close(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    out = b""
    while len(out) < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


def parse_response(raw: bytes) -> Response:
    """Parses one complete HTTP/1.1 response (Content-Length framed) from raw bytes."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete response head in {raw[:300]!r}"
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    assert status_line[0] == "HTTP/1.1", lines[0]
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(rest)))
    assert len(rest) >= length, f"body cut short: {len(rest)} of {length}"
    return Response(int(status_line[1]), headers, rest[:length])


def assert_error(resp: Response, status: int, param=None):
    """An OpenAI error object with this status (and param, when given)."""
    assert resp.status == status, resp
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"message", "type", "param", "code"} <= set(err), err
    assert isinstance(err["message"], str) and err["message"], err
    if param is not None:
        assert err["param"] == param, err
    return err


def sse_events(lines):
    """Yields the JSON payloads of `data:` lines from an iterable of text lines, stopping at [DONE]."""
    for line in lines:
        if not line or line.startswith(":"):
            continue
        assert line.startswith("data: "), f"unexpected SSE line {line!r}"
        data = line[len("data: "):]
        if data == "[DONE]":
            return
        yield json.loads(data)
    raise AssertionError("SSE stream ended without data: [DONE]")


class RawStream:
    """A streaming response read off a raw socket: the status, the headers, then SSE `data:` payloads, decoding
    chunked transfer encoding (an event may span chunks)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.reader = sock.makefile("rb")
        status = self.reader.readline()
        self.status = int(status.split()[1]) if status.startswith(b"HTTP/1.1 ") else None
        assert self.status is not None, f"bad status line {status!r}"
        self.headers = {}
        while True:
            line = self.reader.readline()
            assert line, "connection closed inside the response head"
            if line in (b"\r\n", b"\n"):
                break
            key, _, value = line.decode("latin-1").partition(":")
            self.headers[key.strip().lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        self._buffer = b""
        self._eof = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        if not self.chunked:
            data = self.reader.read1(65536)
        else:
            size_line = self.reader.readline()
            if not size_line:
                data = b""
            else:
                size = int(size_line.split(b";")[0].strip(), 16)
                data = self.reader.read(size) if size else b""
                self.reader.readline()  # the CRLF after the chunk (or after the last-chunk trailer)
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def next_data(self) -> str | None:
        """The next `data:` payload, or None at the end of the body."""
        while True:
            line, sep, rest = self._buffer.partition(b"\n")
            if sep:
                self._buffer = rest
                line = line.rstrip(b"\r")
                if line.startswith(b"data: "):
                    return line[len(b"data: "):].decode()
                continue
            if not self._fill():
                return None

    def read_events(self, count: int):
        """Reads count JSON events (not [DONE])."""
        for _ in range(count):
            data = self.next_data()
            assert data is not None and data != "[DONE]", f"stream ended early ({data!r})"

    def close(self):
        self.reader.close()
        self.sock.close()
