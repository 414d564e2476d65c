"""Run a command as it would run on an older CPU kind, on a newer x86 CPU (Linux), for benchmarks.

    python bench/as_cpu.py avx512-vnni -- spokenqa evaluate --data ...
    python bench/as_cpu.py avx2 -- spokenqa evaluate --data ...

Why: the project's machines come in two kinds (AVX2-only; AVX-512 with bf16 and sometimes AMX),
and a session gets one of them; many users' CPUs are a third kind, AVX-512 with VNNI and without
native bf16 or AMX (Intel Cascade Lake and Ice Lake: most cloud VMs of 2019-2023). Their code
paths can be run on the newest kind:

- `avx512-vnni`: oneDNN (torch's CPU kernels) is capped at AVX512_CORE_VNNI through its own
  setting ONEDNN_MAX_CPU_ISA, so bf16 is emulated in fp32 as it is there, and the process may not
  use AMX: a seccomp filter refuses the kernel's AMX permission request (arch_prctl
  ARCH_REQ_XCOMP_PERM), so ONNX Runtime's int8 products fall back to its AVX512-VNNI kernels.
- `avx2`: the CPU the process sees has no AVX-512, VNNI, bf16 or AMX: CPUID itself is masked
  (bench/cpuid_mask.c, built here with the system's C compiler on first use and preloaded into
  every program of the command; it needs Linux's CPUID faulting, the CPU flag cpuid_fault), so
  every library that picks kernels from CPUID (ONNX Runtime, torch's ATen and cpuinfo, oneDNN,
  numpy) runs its AVX2 code paths; ONEDNN_MAX_CPU_ISA=AVX2 as well, and AMX is refused as above.
  Checked: ONNX Runtime's uint8 x int8 products saturate as on an AVX2-only CPU (VPMADDUBSW),
  torch reports CPU capability AVX2 and no bf16.

What this cannot change: this core's speed, caches and memory, and (`avx512-vnni`) the instructions
the CPU reports. Timings are this CPU running that kind's code paths, not a measurement of that
CPU kind.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

KINDS = {"avx512-vnni": "AVX512_CORE_VNNI", "avx2": "AVX2"}  # kind -> oneDNN's ISA cap
HERE = Path(__file__).resolve().parent
MASK_SOURCE, MASK_LIBRARY = HERE / "cpuid_mask.c", HERE / "out" / "cpuid_mask.so"

# seccomp: refuse arch_prctl(ARCH_REQ_XCOMP_PERM, ...) with EPERM, allow everything else.
_AUDIT_ARCH_X86_64 = 0xC000003E
_NR_ARCH_PRCTL = 158
_ARCH_REQ_XCOMP_PERM = 0x1023
_PROGRAM = [  # (code, jump if true, jump if false, k)
    (0x20, 0, 0, 4),  # load seccomp_data.arch
    (0x15, 0, 5, _AUDIT_ARCH_X86_64),
    (0x20, 0, 0, 0),  # load seccomp_data.nr
    (0x15, 0, 3, _NR_ARCH_PRCTL),
    (0x20, 0, 0, 16),  # load the low half of args[0]
    (0x15, 0, 1, _ARCH_REQ_XCOMP_PERM),
    (0x06, 0, 0, 0x00050000 | 1),  # SECCOMP_RET_ERRNO | EPERM
    (0x06, 0, 0, 0x7FFF0000),  # SECCOMP_RET_ALLOW
]


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]


def refuse_amx() -> None:
    """Install the seccomp filter in this process; it is inherited across fork and exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    filters = (_Filter * len(_PROGRAM))(*[_Filter(*f) for f in _PROGRAM])
    program = _Program(len(_PROGRAM), filters)
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot install the seccomp filter")


def cpuid_mask_library() -> Path:
    """bench/out/cpuid_mask.so, (re)built from bench/cpuid_mask.c when older than its source."""
    if MASK_LIBRARY.is_file() and MASK_LIBRARY.stat().st_mtime >= MASK_SOURCE.stat().st_mtime:
        return MASK_LIBRARY
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("as_cpu.py avx2: needs a C compiler (apt install gcc) to build bench/cpuid_mask.c")
    MASK_LIBRARY.parent.mkdir(parents=True, exist_ok=True)
    tmp = MASK_LIBRARY.with_suffix(f".{os.getpid()}.tmp")
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(MASK_SOURCE)], check=True)
    tmp.replace(MASK_LIBRARY)
    return MASK_LIBRARY


def main() -> int:
    args = sys.argv[1:]
    if len(args) < 3 or args[0] not in KINDS or args[1] != "--":
        print(f"usage: python bench/as_cpu.py {{{','.join(KINDS)}}} -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    os.environ["ONEDNN_MAX_CPU_ISA"] = KINDS[args[0]]
    os.environ["SPOKENQA_AS_CPU"] = args[0]  # benchmarks write it beside the CPU they ran on
    if args[0] == "avx2":  # the library's start-up says so in one line where CPUID faulting is missing
        preload = os.environ.get("LD_PRELOAD", "")
        os.environ["LD_PRELOAD"] = " ".join(filter(None, [str(cpuid_mask_library()), preload]))
    refuse_amx()
    os.execvp(args[2], args[2:])


if __name__ == "__main__":
    sys.exit(main())
