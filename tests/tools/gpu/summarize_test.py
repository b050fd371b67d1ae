"""tools/gpu/summarize.py on an output folder of known figures: the ratios and the decode bound it derives,
and "missing" for what a cut-short session did not write."""
import contextlib
import io
import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools" / "gpu"))
import summarize  # noqa: E402


def bench(output_tok_per_s, itl_ms_p50=10.0, ttft_ms_p50=50.0, ttft_ms_p99=90.0, backend="cuda:0 test GPU"):
    return json.dumps({"backend": backend, "output_tok_per_s": output_tok_per_s, "itl_ms_p50": itl_ms_p50,
                       "ttft_ms_p50": ttft_ms_p50, "ttft_ms_p99": ttft_ms_p99})


class SummarizeTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.out = Path(self.folder.name)

    def tearDown(self):
        self.folder.cleanup()

    def write(self, name, text):
        (self.out / name).write_text(text + "\n")

    def test_targets_ratios_and_the_decode_bound(self):
        self.write("gpu.txt", "name, compute_cap, memory.total [MiB], driver_version\nNVIDIA H200, 9.0, 143771 MiB, 570.1")
        self.write("bandwidth.json", json.dumps({"read_gb_s": 4000.0}))
        self.write("ours_c1.json", bench(180.0, itl_ms_p50=5.0))            # 200 tok/s of decode
        self.write("ours_c64.json", bench(2000.0, ttft_ms_p50=120.0, ttft_ms_p99=480.0))
        self.write("peer.json", "\n".join(json.dumps({"peer": "transformers 5", "batch": b, "output_tok_per_s": t,
                                                        "ttft_ms_mean": 30.0 * b}) for b, t in ((1, 160.0), (64, 250.0))))
        self.write("ours_c64_kv_f32.json", bench(1600.0))
        self.write("gpu_tests.log", "...\n100% tests passed, 0 tests failed out of 21\n\nTotal Test time (real) = 9 sec")
        text = summarize.summarize(self.out, weight_bytes=18_000_000_000)

        self.assertIn("GPU: NVIDIA H200, 9.0, 143771 MiB, 570.1; ours: cuda:0 test GPU; peer: transformers 5", text)
        self.assertIn("GPU tests (ctest -L gpu): 100% tests passed, 0 tests failed out of 21; again with the per-head "
                      "attention kernel: missing", text)
        self.assertIn("| output tok/s, concurrency 1 | 180.0 | 160.0 | 1.12x | >= 1.2x | no |", text)
        self.assertIn("| output tok/s, concurrency 64 | 2000.0 | 250.0 | 8.00x | >= 10x | no |", text)
        self.assertIn("| TTFT p50 / p99 ms, concurrency 64 | 120.0 / 480.0 | mean 1920.0 | | | |", text)
        # 4000 GB/s over 18 GB is 222.2 tok/s; 200 of it is 90%.
        self.assertIn("| decode tok/s at batch 1 (1000 / inter-token p50) | 200.0 | bound 222.2 "
                      "(4000.0 GB/s read / 18.00 GB of weights) | 90.0% of the bound | >= 75% | yes |", text)
        self.assertIn("| F32 KV cache, concurrency 64: output tok/s | 2000.0 | 1600.0 | 0.80x |", text)

    def test_what_a_short_session_left_out_reads_missing(self):
        self.write("ours_c1.json", bench(180.0))
        self.write("ours_c64.json", "bench c64 FAILED")  # not JSON
        text = summarize.summarize(self.out, weight_bytes=None)
        self.assertIn("GPU: missing;", text)
        self.assertIn("| output tok/s, concurrency 1 | 180.0 | missing | missing | >= 1.2x | missing |", text)
        self.assertIn("| output tok/s, concurrency 64 | missing | missing | missing | >= 10x | missing |", text)
        self.assertIn("| decode tok/s at batch 1 (1000 / inter-token p50) | 100.0 | bound missing (missing GB/s read / "
                      "missing GB of weights) | missing | >= 75% | missing |", text)
        self.assertIn("| CUDA graphs, concurrency 1: output tok/s | 180.0 | missing | missing |", text)
        self.assertIn("| matvec for small batches (GLM4_CUDA_MATMUL), concurrency 1: output tok/s | 180.0 | missing |", text)

    def test_the_command_line_reads_weight_bytes_from_the_model_folder(self):
        model = self.out / "model"
        model.mkdir()
        (model / "model-00001.safetensors").write_bytes(b"x" * 3000)
        (model / "model-00002.safetensors").write_bytes(b"x" * 1000)
        (model / "config.json").write_text("{}")
        self.assertEqual(summarize.weight_bytes_of(model), 4000)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            sys.argv = ["summarize.py", str(self.out), "--model", str(model)]
            summarize.main()
        self.assertIn("0.00 GB of weights", printed.getvalue())

    def test_without_a_flag_the_weight_bytes_come_from_what_session_sh_recorded(self):
        self.write("weight_bytes.txt", "18800000000")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            sys.argv = ["summarize.py", str(self.out)]
            summarize.main()
        self.assertIn("18.80 GB of weights", printed.getvalue())


if __name__ == "__main__":
    unittest.main()
