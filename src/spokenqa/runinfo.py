"""Run metadata: what is needed to rerun a training run (provenance: versions, commit, data
hashes, machine) and what each segment of it cost (`segments.json`: one entry per start or
`--resume`, with its steps, wall time, CPU and precision), so a model card can state the real
cost of a run that spanned several sessions and machines."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from spokenqa import __version__
from spokenqa.config import RunConfig, resolve_model_path
from spokenqa.files import atomic_write_json, file_sha256


def provenance(cfg: RunConfig) -> dict[str, Any]:
    """What else is needed to rerun: versions, commit, data hashes, machine."""
    import accelerate
    import transformers

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5,
            check=False,  # outside a git checkout the commit is simply unknown
        ).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        commit = None
    files = [*cfg.train_files, *([cfg.eval_file] if cfg.eval_file else [])]
    return {
        "spokenqa": __version__,
        "git_commit": commit,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "accelerate": accelerate.__version__,
        },
        "data_sha256": {f: file_sha256(f) for f in files},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "cuda": torch.cuda.is_available()},
        "model_path": resolve_model_path(cfg.model),
        "command": sys.argv,
    }


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    """The CPU's model name and its vector extensions: what a step costs depends on both
    (a virtual machine often names its CPU only "Intel(R) Xeon(R) Processor")."""
    name = platform.processor() or platform.machine()
    try:
        name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), name)
    except OSError:
        pass
    flags = cpu_flags()
    kinds = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({', '.join(kinds)})" if kinds else name


class Segment:
    """The run's notes (`segments.json`): one entry per invocation of `train` (a first start or a
    `--resume`), with its steps, wall time and machine, so a model card can state the real cost of
    a run that spanned several sessions and machines. Its wall time counts from `t0`, the start of
    `train()` (data loading and tokenisation included). Updated at every checkpoint, so a segment
    killed without warning still reports up to its last checkpoint."""

    def __init__(self, out: Path, first_step: int, precision: str, t0: float) -> None:
        self.path = out / "segments.json"
        self.segments = json.loads(self.path.read_text()) if self.path.exists() else []
        self.t0 = t0
        self.entry = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.t0)),
            "first_step": first_step, "last_step": first_step, "wall_seconds": 0.0,
            "cpu": cpu_model(), "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "precision": precision,
            # a preloaded allocator (jemalloc) changes the step time (scripts/release_model.sh)
            "ld_preload": os.environ.get("LD_PRELOAD") or None,
        }

    def record(self, step: int) -> None:
        self.entry.update(last_step=step, wall_seconds=round(time.time() - self.t0, 1),
                          ended=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        atomic_write_json(self.path, [*self.segments, self.entry])

