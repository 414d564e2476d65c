"""Installing prints only what a user needs: the build backend reads pyproject.toml without a
warning (a TOML-table `project.license` made setuptools print about 120 deprecation lines)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


def test_metadata_builds_without_warnings(tmp_path):
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__}: pyproject.toml needs 77+ (pip's isolated build gets it)")
    project = tmp_path / "project"
    (project / "src" / "spokenqa").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copy(ROOT / "src" / "spokenqa" / "__init__.py", project / "src" / "spokenqa")
    meta = tmp_path / "meta"
    meta.mkdir()
    code = f"from setuptools import build_meta; print(build_meta.prepare_metadata_for_build_wheel({str(meta)!r}))"
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], cwd=project, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "Warning" not in output and "deprecated" not in output, output[-3000:]
    metadata = (meta / done.stdout.strip().splitlines()[-1] / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
