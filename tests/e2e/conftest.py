"""Fixtures of the end-to-end tests: the tiny model, made once per session, and glm4-actor servers on loopback.

GLM4_BINARY names the glm4-actor executable (ctest sets it); without it, build/glm4-actor is used.
GLM4_E2E_SERVE_BINARY and GLM4_E2E_SERVE_LAYOUT, when set, start every server with that executable and (unless the
test gives its own --config) that cluster.toml.
"""

from __future__ import annotations

import itertools
import os
import time

import pytest

from e2e_util import STOP_TIMEOUT_S, Server, make_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    # The directory name is the served model name.
    return make_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="session")
def server_factory(model_dir, tmp_path_factory):
    """start(*extra_args, threads=1, api_key=None, executable=None) -> a ready Server; all are stopped (SIGTERM,
    exit 0) at the end. `executable` replaces glm4-actor (the emulated-GPU build, for one)."""
    servers: list[Server] = []
    logs = tmp_path_factory.mktemp("logs")
    counter = itertools.count()

    # The whole file against another build or layout (ctest runs some files on the emulated GPUs this way).
    default_executable = os.environ.get("GLM4_E2E_SERVE_BINARY")
    default_layout = os.environ.get("GLM4_E2E_SERVE_LAYOUT")

    def start(*extra_args, threads: int = 1, api_key: str | None = None, executable: str | None = None) -> Server:
        if default_layout and "--config" not in extra_args:
            extra_args = ("--config", default_layout, *extra_args)
        server = Server(model_dir, logs / f"server-{next(counter)}.log", extra_args, threads=threads,
                        api_key=api_key, executable=executable or default_executable)
        servers.append(server)
        return server

    yield start

    running = [server for server in servers if not server.stopped]  # tests check the exits of those they stop
    for server in running:
        server.terminate()  # all at once, so their shutdowns overlap
    deadline = time.monotonic() + STOP_TIMEOUT_S
    failures = []
    for server in running:
        try:
            code = server.stop(timeout=deadline - time.monotonic())
        except AssertionError as error:
            failures.append(str(error))
            continue
        if code != 0:
            failures.append(f"{server.args} exited with {code} after SIGTERM\n{server.log_tail()}")
    assert not failures, "\n\n".join(failures)


@pytest.fixture(scope="session")
def server(server_factory) -> Server:
    """The shared server of a test file: tiny model, no API key, defaults otherwise."""
    return server_factory()
