#!/usr/bin/env python3
"""Registers, spills and shared memory of every kernel, as ptxas assigns them for one architecture, and
whether each kernel's largest launch fits a block's register file. The emulated GPUs run any kernel at
any block size; a real one refuses a launch whose threads need more registers than a block may hold
("too many resources requested for launch"), which only ptxas's figures reveal. A kernel declared
__launch_bounds__(N) is held to N threads (ptxas fits its registers to them, and the emulation refuses a
launch past N); any other kernel must fit at 1024, the most a launch may ask for.

    python3 tools/cuda/kernel_resources.py --ptxas /usr/local/cuda/bin/ptxas --arch sm_75 a.ptx,b.ptx

Prints one markdown row per kernel; exits 1 naming each kernel that cannot launch as declared.
"""
import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# The same on every architecture from sm_75 to sm_90 (CUDA's occupancy table): registers a block may hold,
# the unit a warp's registers are allocated in, the threads a launch may ask for, static shared memory.
REGISTERS_PER_BLOCK = 65536
REGISTER_ALLOCATION_UNIT = 256
MAX_THREADS_PER_BLOCK = 1024
MAX_STATIC_SHARED_BYTES = 48 * 1024
WARP_SIZE = 32


@dataclass
class kernel_usage:
    name: str
    registers: int = 0
    spill_bytes: int = 0
    stack_bytes: int = 0
    shared_bytes: int = 0
    max_threads: int = 0  # __launch_bounds__, or 0 when undeclared


def launch_bounds(ptx: str) -> dict:
    """Each entry's .maxntid (the threads __launch_bounds__ allows), from PTX text."""
    bounds = {}
    for match in re.finditer(r"\.entry\s+([A-Za-z_$][\w$]*)\s*\([^)]*\)([^{]*)\{", ptx):
        directives = match.group(2)
        maxntid = re.search(r"\.maxntid\s+(\d+)\s*(?:,\s*(\d+))?\s*(?:,\s*(\d+))?", directives)
        if maxntid:
            threads = 1
            for dimension in maxntid.groups():
                threads *= int(dimension) if dimension else 1
            bounds[match.group(1)] = threads
        else:
            bounds[match.group(1)] = 0
    return bounds


def parse_ptxas(report: str) -> list:
    """The entry functions of `ptxas -v` output, with what it says of each."""
    kernels = []
    by_name = {}
    current = None
    for line in report.splitlines():
        compiling = re.search(r"Compiling entry function '([^']+)'", line)
        if compiling:
            current = by_name.setdefault(compiling.group(1), kernel_usage(compiling.group(1)))
            if current not in kernels:
                kernels.append(current)
            continue
        properties = re.search(r"Function properties for (\S+)", line)
        if properties:
            current = by_name.get(properties.group(1))  # None for a device function: not a launch
            continue
        if current is None:
            continue
        frame = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if frame:
            current.stack_bytes = int(frame.group(1))
            current.spill_bytes = int(frame.group(2)) + int(frame.group(3))
        used = re.search(r"Used (\d+) registers", line)
        if used:
            current.registers = int(used.group(1))
            shared = re.search(r"(\d+) bytes smem", line)
            current.shared_bytes = int(shared.group(1)) if shared else 0
    return kernels


def registers_for(registers: int, threads: int) -> int:
    """Registers a block of `threads` takes: whole warps, each allocated in units of 256."""
    warps = -(-threads // WARP_SIZE)
    per_warp = -(-registers * WARP_SIZE // REGISTER_ALLOCATION_UNIT) * REGISTER_ALLOCATION_UNIT
    return warps * per_warp


def problems(kernel: kernel_usage) -> list:
    threads = kernel.max_threads or MAX_THREADS_PER_BLOCK
    found = []
    needed = registers_for(kernel.registers, threads)
    if needed > REGISTERS_PER_BLOCK:
        fits = REGISTERS_PER_BLOCK // registers_for(kernel.registers, WARP_SIZE) * WARP_SIZE
        why = "its __launch_bounds__" if kernel.max_threads else "no __launch_bounds__ declared"
        found.append(f"{kernel.registers} registers per thread need {needed} registers for {threads} threads ({why}), "
                     f"more than the {REGISTERS_PER_BLOCK} a block holds: it can launch at most {fits} threads; "
                     f"declare __launch_bounds__ with the threads its launcher uses")
    if kernel.shared_bytes > MAX_STATIC_SHARED_BYTES:
        found.append(f"{kernel.shared_bytes} bytes of static shared memory, more than {MAX_STATIC_SHARED_BYTES}")
    return found


def short_name(mangled: str, demangled: str) -> str:
    """`grouped_attention_kernel<__half, 4, 32>` from the demangled signature, without namespaces or parameters."""
    text = demangled or mangled
    text = re.sub(r"\(anonymous namespace\)::", "", text)
    depth, cut = 0, len(text)
    for position, character in enumerate(text):  # the parameter list: the first '(' outside template brackets
        depth += character == "<"
        depth -= character == ">"
        if character == "(" and depth == 0:
            cut = position
            break
    text = text[:cut]
    if text.startswith("void "):
        text = text[5:]
    return re.sub(r"^(?:[A-Za-z_]\w*::)+", "", text)


def demangle(names: list) -> list:
    tool = shutil.which("c++filt")
    if tool is None:
        return [""] * len(names)
    result = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True, check=False)
    lines = result.stdout.splitlines()
    return lines if len(lines) == len(names) else [""] * len(names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ptxas", required=True)
    parser.add_argument("--arch", required=True, help="sm_XX")
    parser.add_argument("ptx", help="PTX files, comma-separated")
    args = parser.parse_args()

    kernels = []
    for path in [Path(p) for p in args.ptx.split(",") if p]:
        result = subprocess.run([args.ptxas, f"-arch={args.arch}", "-v", str(path), "-o", "/dev/null"],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            print(f"ptxas failed on {path}:\n{result.stderr}", file=sys.stderr)
            return 1
        bounds = launch_bounds(path.read_text())
        for kernel in parse_ptxas(result.stdout + result.stderr):
            kernel.max_threads = bounds.get(kernel.name, 0)
            kernels.append((path.name.split(".")[0], kernel))
    if not kernels:
        print("no kernels found: nothing was checked", file=sys.stderr)
        return 1

    names = demangle([kernel.name for _, kernel in kernels])
    print(f"| kernel ({args.arch}) | file | registers | launch bound | spill bytes | stack bytes | static smem |")
    print("|---|---|---|---|---|---|---|")
    failures = []
    for (source, kernel), demangled in zip(kernels, names):
        name = short_name(kernel.name, demangled)
        print(f"| {name} | {source}.cu | {kernel.registers} | {kernel.max_threads or '-'} | {kernel.spill_bytes} | "
              f"{kernel.stack_bytes} | {kernel.shared_bytes} |")
        failures += [f"{name} ({source}.cu, {args.arch}): {problem}" for problem in problems(kernel)]
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
