"""A separate virtual environment holding the other projects' own code, for parity tests.

Parity is checked against what partners really run (python-threatexchange, Meta's `vpdq`), not
against a copy of their rules: those packages are installed with pip into `.cache/parity-venv`
(ignored by git, kept between runs) and run there as a subprocess. When pip cannot install one
(no registry, no compiler, missing FFmpeg headers), the test is skipped with pip's reason; the
failure is remembered for the day so each run does not wait on pip again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("VIGIE_PARITY_VENV", ROOT / ".cache" / "parity-venv"))


def _python() -> Path:
    return VENV / "bin" / "python"


def _has(module: str) -> bool:
    py = _python()
    if not py.exists():
        return False
    return subprocess.run([str(py), "-c", f"import {module}"], capture_output=True, timeout=120).returncode == 0


def parity_python(package: str, module: str) -> Path:
    """The venv's interpreter with `package` importable as `module`; pytest.skip with the reason otherwise.
    Test processes running side by side (pytest -n) install one at a time, under a file lock."""
    if _has(module):
        return _python()
    import fcntl

    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "parity-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _install(package, module)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _install(package: str, module: str) -> Path:
    if _has(module):
        return _python()
    failed = VENV.parent / f"parity-{package}.failed"
    if failed.exists() and time.time() - failed.stat().st_mtime < 86400:
        pytest.skip(f"{package} could not be installed in {VENV} earlier today: {failed.read_text()[-600:]}")
    if not _python().exists():
        base = getattr(sys, "_base_executable", sys.executable)
        r = subprocess.run([base, "-m", "venv", str(VENV)], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            pytest.skip(f"cannot create the parity venv: {r.stderr[-600:]}")
    r = subprocess.run([str(_python()), "-m", "pip", "install", "-q", package], capture_output=True, text=True,
                       timeout=1800)
    if r.returncode != 0 or not _has(module):
        failed.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(r.stderr or r.stdout or "installed but not importable")
        pytest.skip(f"pip install {package} failed: {(r.stderr or r.stdout)[-600:]}")
    return _python()


def run_json(python: Path, script: str, payload) -> object:
    """Run `script` in the parity venv with `payload` as JSON on stdin; its stdout is JSON."""
    r = subprocess.run([str(python), "-c", script], input=json.dumps(payload), capture_output=True, text=True,
                       timeout=900, cwd=str(VENV.parent))
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)
