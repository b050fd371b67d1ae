"""tools/cuda/kernel_resources.py on PTX and ptxas output of known kernels: the launch bounds it reads, the
figures it parses, and the launches it finds too large for a block's registers."""
import os
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

TOOL = Path(__file__).resolve().parents[3] / "tools" / "cuda" / "kernel_resources.py"
sys.path.insert(0, str(TOOL.parent))
import kernel_resources  # noqa: E402

PTX = """
.visible .entry _Z7boundedPf(
\t.param .u64 _Z7boundedPf_param_0
)
.maxntid 256, 1, 1
.minnctapersm 2
{
\tret;
}
.entry _ZN12_GLOBAL__N_18unboundEPfi(
\t.param .u64 _ZN12_GLOBAL__N_18unboundEPfi_param_0,
\t.param .u32 _ZN12_GLOBAL__N_18unboundEPfi_param_1
)
{
\tret;
}
.visible .entry _Z4gridv(
)
.maxntid 16, 8, 2
{
\tret;
}
"""

PTXAS = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z7boundedPf' for 'sm_75'
ptxas info    : Function properties for _Z7boundedPf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 167 registers, used 1 barriers, 7488 bytes smem, 360 bytes cmem[0]
ptxas info    : Function properties for _Z6helperv
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
ptxas info    : Compiling entry function '_ZN12_GLOBAL__N_18unboundEPfi' for 'sm_75'
ptxas info    : Function properties for _ZN12_GLOBAL__N_18unboundEPfi
    40 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 80 registers, used 0 barriers, 364 bytes cmem[0]
"""


class KernelResourcesTest(unittest.TestCase):
    def test_reads_each_entrys_launch_bound_from_ptx(self):
        self.assertEqual(kernel_resources.launch_bounds(PTX),
                         {"_Z7boundedPf": 256, "_ZN12_GLOBAL__N_18unboundEPfi": 0, "_Z4gridv": 256})

    def test_parses_entries_and_skips_device_functions(self):
        bounded, unbound = kernel_resources.parse_ptxas(PTXAS)
        self.assertEqual((bounded.name, bounded.registers, bounded.shared_bytes, bounded.spill_bytes),
                         ("_Z7boundedPf", 167, 7488, 0))
        self.assertEqual((unbound.registers, unbound.stack_bytes, unbound.spill_bytes, unbound.shared_bytes),
                         (80, 40, 20, 0))

    def test_registers_are_allocated_per_warp_in_units_of_256(self):
        self.assertEqual(kernel_resources.registers_for(167, 256), 8 * 21 * 256)
        self.assertEqual(kernel_resources.registers_for(64, 1024), 65536)
        self.assertEqual(kernel_resources.registers_for(65, 1000), 32 * 9 * 256)

    def test_a_kernel_without_bounds_must_fit_1024_threads(self):
        fits = kernel_resources.kernel_usage("k", registers=64)
        self.assertEqual(kernel_resources.problems(fits), [])
        too_many = kernel_resources.kernel_usage("k", registers=65)
        (problem,) = kernel_resources.problems(too_many)
        self.assertIn("65 registers per thread need 73728 registers for 1024 threads (no __launch_bounds__ declared)",
                      problem)
        self.assertIn("it can launch at most 896 threads", problem)

    def test_a_bounded_kernel_is_held_to_its_bound(self):
        self.assertEqual(kernel_resources.problems(kernel_resources.kernel_usage("k", registers=167, max_threads=256)),
                         [])
        (problem,) = kernel_resources.problems(kernel_resources.kernel_usage("k", registers=167, max_threads=512))
        self.assertIn("need 86016 registers for 512 threads (its __launch_bounds__)", problem)

    def test_static_shared_memory_past_48_kib_is_refused(self):
        (problem,) = kernel_resources.problems(kernel_resources.kernel_usage("k", registers=8, shared_bytes=49153))
        self.assertIn("49153 bytes of static shared memory", problem)

    def test_short_names_drop_namespaces_and_parameters(self):
        self.assertEqual(kernel_resources.short_name(
            "x", "void glm4::kernels::cuda::(anonymous namespace)::grouped_attention_kernel<__half, 4, 32>"
                 "(glm4::kernels::cuda::paged_attention_args)"), "grouped_attention_kernel<__half, 4, 32>")
        self.assertEqual(kernel_resources.short_name("_Z4gridv", ""), "_Z4gridv")

    def test_exits_1_naming_the_kernel_that_cannot_launch(self):
        with tempfile.TemporaryDirectory() as folder:
            ptx = Path(folder) / "probe.ptx"
            ptx.write_text(PTX)
            ptxas = Path(folder) / "ptxas"
            report = Path(folder) / "report.txt"
            report.write_text(PTXAS)
            ptxas.write_text(f"#!/bin/sh\ncat '{report}' >&2\n")
            ptxas.chmod(ptxas.stat().st_mode | stat.S_IEXEC)
            result = subprocess.run([sys.executable, "-B", str(TOOL), "--ptxas", str(ptxas), "--arch", "sm_75",
                                     str(ptx)], capture_output=True, text=True, env=dict(os.environ))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("| 167 | 256 | 0 | 0 | 7488 |", result.stdout)
        self.assertIn("(probe.cu, sm_75): 80 registers per thread need", result.stderr)
        self.assertNotIn("bounded", result.stderr)


if __name__ == "__main__":
    unittest.main()
