"""Run a command as it would run on an older CPU kind, on a newer x86 CPU (Linux), for benchmarks.

    python bench/as_cpu.py avx512-vnni -- spokenqa evaluate --data ...

Why: the project's machines come in two kinds (AVX2-only; AVX-512 with bf16 and sometimes AMX),
but many users' CPUs are a third kind, AVX-512 with VNNI and without native bf16 or AMX (Intel
Cascade Lake and Ice Lake: most cloud VMs of 2019-2023). Their code paths can be run here:

- `avx512-vnni`: oneDNN (torch's CPU kernels) is capped at AVX512_CORE_VNNI through its own
  setting ONEDNN_MAX_CPU_ISA, so bf16 is emulated in fp32 as it is there, and the process may not
  use AMX: a seccomp filter refuses the kernel's AMX permission request (arch_prctl
  ARCH_REQ_XCOMP_PERM), so ONNX Runtime's int8 products fall back to its AVX512-VNNI kernels.

What this cannot change: the instructions the CPU reports (ONNX Runtime's AVX-512 fp32 kernels
and torch's vectorised ops run as on such a CPU anyway), and this core's speed, caches and memory.
Its timings are this CPU running that kind's code paths, not a measurement of that CPU kind.
"""

from __future__ import annotations

import ctypes
import os
import sys

KINDS = {"avx512-vnni": "AVX512_CORE_VNNI"}

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


def main() -> int:
    args = sys.argv[1:]
    if len(args) < 3 or args[0] not in KINDS or args[1] != "--":
        print(f"usage: python bench/as_cpu.py {{{','.join(KINDS)}}} -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    os.environ["ONEDNN_MAX_CPU_ISA"] = KINDS[args[0]]
    os.environ["SPOKENQA_AS_CPU"] = args[0]  # benchmarks write it beside the CPU they ran on
    refuse_amx()
    os.execvp(args[2], args[2:])


if __name__ == "__main__":
    sys.exit(main())
