"""The GPU serving path end to end, on cuda:0 of the host emulation of CUDA: glm4-actor-emulated-gpu is the same
command line linked against tests/kernels/emulated_cuda instead of the CUDA libraries (GLM4_EMULATED_GPU_BINARY).
A server laid on cuda:0 plans its memory on the GPU, answers concurrent requests (streamed and not, chat and
completions), replays its decode steps as CUDA graphs with the same greedy text as running them directly, and stops
cleanly on SIGTERM with a stream in flight. A stage split over cuda:0 and cuda:1 (GLM4_EMULATED_GPUS=2) joins its
NCCL group through the actors' messages, serves with and without graphs alike, and stops cleanly on SIGTERM with a
stream in flight. On a GPU the build has no
kernel image for (GLM4_EMULATED_SM=70), doctor and serve say so, and how to rebuild, before anything runs; a layout
the GPU's 8 GiB cannot hold is refused before loading, with the sizes and what to change. The text is not compared with a CPU server's: BF16 GEMM inputs on the
GPU round differently, and greedy picks may differ where two logits are close."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess

import pytest

from e2e_util import completion, wait_idle
from test_raw_http import check_sigterm_with_a_stream_in_flight
from test_sharded import run_all

EMULATED_GPU_BINARY = os.environ.get("GLM4_EMULATED_GPU_BINARY")
pytestmark = pytest.mark.skipif(not EMULATED_GPU_BINARY,
                                reason="GLM4_EMULATED_GPU_BINARY is not set (a build without CUDA has no emulated GPU)")


def gpu_layout(tmp_path_factory, cuda_graphs: bool, devices: str = '"cuda:0"'):
    path = tmp_path_factory.mktemp("layout") / "cluster.toml"
    path.write_text(f"""
[[stage]]
devices = [{devices}]
kv_cache_bytes = "64MiB"
cuda_graphs = {"true" if cuda_graphs else "false"}
""")
    return path


@pytest.fixture(scope="module")
def gpu_direct(server_factory, tmp_path_factory):
    return server_factory("--config", str(gpu_layout(tmp_path_factory, False)), executable=EMULATED_GPU_BINARY)


@pytest.fixture(scope="module")
def gpu_graphs(server_factory, tmp_path_factory):
    return server_factory("--config", str(gpu_layout(tmp_path_factory, True)), executable=EMULATED_GPU_BINARY)


def test_a_gpu_server_plans_its_memory_on_the_gpu(gpu_direct):
    log = gpu_direct.log_tail(80)
    assert "memory plan on cuda:0 glm4 host emulation" in log, log
    assert "64.00 MiB" in log, log
    out = completion(gpu_direct, max_tokens=5, temperature=0)
    assert out["usage"]["completion_tokens"] == 5, out


def test_decode_steps_replayed_as_graphs_serve_the_text_of_running_them_directly(gpu_direct, gpu_graphs):
    want = asyncio.run(run_all(gpu_direct, 8))
    got = asyncio.run(run_all(gpu_graphs, 8))
    for i, (a, b) in enumerate(zip(want, got)):
        assert (b["text"], b["finish"], b["usage"]) == (a["text"], a["finish"], a["usage"]), i
    assert asyncio.run(run_all(gpu_graphs, 8)) == got  # replays of recordings made by the first run
    wait_idle(gpu_graphs)


def test_a_gpu_server_stops_cleanly_with_a_stream_in_flight(server_factory, tmp_path_factory):
    server = server_factory("--config", str(gpu_layout(tmp_path_factory, True)), executable=EMULATED_GPU_BINARY)
    check_sigterm_with_a_stream_in_flight(server)


def test_a_stage_over_two_gpus_joins_nccl_and_serves_alike_with_graphs(server_factory, tmp_path_factory):
    two = '"cuda:0", "cuda:1"'
    direct = server_factory("--config", str(gpu_layout(tmp_path_factory, False, two)), executable=EMULATED_GPU_BINARY)
    graphs = server_factory("--config", str(gpu_layout(tmp_path_factory, True, two)), executable=EMULATED_GPU_BINARY)
    assert "tp 1/2" in direct.log_tail(80), direct.log_tail(80)
    want = asyncio.run(run_all(direct, 8))
    got = asyncio.run(run_all(graphs, 8))
    for i, (a, b) in enumerate(zip(want, got)):
        assert (b["text"], b["finish"], b["usage"]) == (a["text"], a["finish"], a["usage"]), i
        assert a["usage"]["completion_tokens"] > 0, i
    wait_idle(direct)
    wait_idle(graphs)


def test_a_gpu_without_a_kernel_image_is_named_with_the_fix_before_serving(model_dir, tmp_path_factory):
    env = {**os.environ, "GLM4_EMULATED_SM": "70"}
    doctor = subprocess.run([EMULATED_GPU_BINARY, "doctor"], env=env, capture_output=True, text=True, timeout=60)
    assert doctor.returncode == 0, doctor
    assert "runs:   NO: sm_70 (Volta) is not a CUDA 13 target" in doctor.stdout, doctor.stdout
    assert "CUDA 12 toolkit and -DCMAKE_CUDA_ARCHITECTURES=70" in doctor.stdout, doctor.stdout
    serve = subprocess.run([EMULATED_GPU_BINARY, "serve", "--model", str(model_dir), "--config",
                            str(gpu_layout(tmp_path_factory, False)), "--host", "127.0.0.1", "--port", "0"],
                           env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert serve.returncode != 0, serve
    assert "ready" not in serve.stdout, serve.stdout
    assert "no kernel image is available" in serve.stderr and "CUDA 12 toolkit" in serve.stderr, serve.stderr


@pytest.mark.parametrize("sm, verdict", [("75", "yes, native sm_75"), ("87", "yes, native sm_86"),
                                         ("120", "yes, JIT from compute_90 PTX")])
def test_doctor_and_the_driver_agree_on_gpus_the_build_runs_on(sm, verdict):
    doctor = subprocess.run([EMULATED_GPU_BINARY, "doctor"], env={**os.environ, "GLM4_EMULATED_SM": sm},
                            capture_output=True, text=True, timeout=60)
    assert doctor.returncode == 0, doctor
    assert f"runs:   {verdict}" in doctor.stdout and "driver loaded the kernels" in doctor.stdout, doctor.stdout


@pytest.mark.parametrize("setting, need, advice", [
    ("gpu_memory_utilization = 0.0005", "gpu_memory_utilization 0.0005 of 8.00 GiB leaves", "raise gpu_memory_utilization"),
    ('kv_cache_bytes = "9GiB"', "but only 8.00 GiB of 8.00 GiB is free", "lower kv_cache_bytes"),
])
def test_a_layout_the_gpu_cannot_hold_is_refused_before_loading(model_dir, tmp_path, setting, need, advice):
    layout = tmp_path / "cluster.toml"
    layout.write_text(f'[[stage]]\ndevices = ["cuda:0"]\n{setting}\n')
    serve = subprocess.run([EMULATED_GPU_BINARY, "serve", "--model", str(model_dir), "--config", str(layout),
                            "--host", "127.0.0.1", "--port", "0"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert serve.returncode != 0, serve
    assert "cuda:0 (glm4 host emulation)" in serve.stderr and need in serve.stderr, serve.stderr
    assert advice in serve.stderr, serve.stderr


def test_a_stage_over_two_gpus_stops_cleanly_with_a_stream_in_flight(server_factory, tmp_path_factory):
    server = server_factory("--config", str(gpu_layout(tmp_path_factory, True, '"cuda:0", "cuda:1"')),
                            executable=EMULATED_GPU_BINARY)
    check_sigterm_with_a_stream_in_flight(server)


def test_doctor_plans_a_gpu_for_a_model_as_for_a_one_gpu_layout(model_dir, tmp_path):
    """doctor --model and doctor --config (one stage on cuda:0, default limits) give cuda:0 the same KV budget:
    serve's rule, which keeps room for the largest step's activations and workspaces."""
    layout = tmp_path / "cluster.toml"
    layout.write_text('[[stage]]\ndevices = ["cuda:0"]\n')
    by_model = subprocess.run([EMULATED_GPU_BINARY, "doctor", "--model", str(model_dir)],
                              capture_output=True, text=True, timeout=60)
    by_layout = subprocess.run([EMULATED_GPU_BINARY, "doctor", "--model", str(model_dir), "--config", str(layout)],
                               capture_output=True, text=True, timeout=60)
    assert by_model.returncode == 0 and by_layout.returncode == 0, (by_model, by_layout)
    model_plan = re.search(r"GPU 0:.*?\n  plan:   (.*) = \S+ \S+ KV cache, (\d+) tokens", by_model.stdout, re.S)
    layout_plan = re.search(r"cuda:0: .*activations and workspaces (\S+ \S+); KV budget \S+ \S+ = (\d+) tokens",
                            by_layout.stdout)
    assert model_plan and layout_plan, (by_model.stdout, by_layout.stdout)
    assert f"activations and workspaces {layout_plan.group(1)}" in model_plan.group(1), model_plan.group(1)
    assert model_plan.group(2) == layout_plan.group(2), (by_model.stdout, by_layout.stdout)
