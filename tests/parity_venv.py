"""A separate virtual environment holding the other projects' own code, for parity tests.

Parity is checked against what partners really run (python-threatexchange, Meta's `vpdq`), not
against a copy of their rules: those packages are installed with pip into `.cache/parity-venv`
(ignored by git, kept between runs) and run there as a subprocess: a fresh clone builds it on the
first test that needs it (CI included), so the parity tests run rather than skip. The test is
skipped, with pip's reason, only when the package registry cannot be reached (no network, no
index: remembered for an hour so each test does not wait on pip again); any other failure to
install (no compiler, missing FFmpeg headers, a broken build) fails the test with pip's output,
since a parity test that silently stops running proves nothing.
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
    failed = VENV.parent / f"parity-{package}.unreachable"
    if failed.exists() and time.time() - failed.stat().st_mtime < 3600:
        pytest.skip(f"the package registry was unreachable for {package} in the last hour: "
                    f"{failed.read_text()[-600:]}")
    if not _python().exists():
        base = getattr(sys, "_base_executable", sys.executable)
        r = subprocess.run([base, "-m", "venv", str(VENV)], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            pytest.skip(f"cannot create the parity venv: {r.stderr[-600:]}")
    r = subprocess.run([str(_python()), "-m", "pip", "install", "-q", package], capture_output=True, text=True,
                       timeout=1800)
    if r.returncode != 0 or not _has(module):
        text = r.stderr or r.stdout or "installed but not importable"
        if unreachable(text):
            failed.parent.mkdir(parents=True, exist_ok=True)
            failed.write_text(text)
            pytest.skip(f"the package registry is unreachable, {package} cannot be installed: {text[-600:]}")
        pytest.fail(f"pip install {package} into {VENV} failed (not a network failure): {text[-2000:]}")
    return _python()


#: What pip prints when it cannot reach the index (DNS, refused or timed-out connections, proxies, TLS).
_NETWORK = ("Failed to establish a new connection", "Temporary failure in name resolution", "Name or service not known",
            "Max retries exceeded", "ConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ProxyError",
            "Network is unreachable", "Connection refused", "SSLError", "No route to host")


def unreachable(pip_output: str) -> bool:
    """Whether pip failed because the registry could not be reached (and not for a build or a missing wheel)."""
    return any(s in pip_output for s in _NETWORK)


def run_json(python: Path, script: str, payload) -> object:
    """Run `script` in the parity venv with `payload` as JSON on stdin; its stdout is JSON."""
    r = subprocess.run([str(python), "-c", script], input=json.dumps(payload), capture_output=True, text=True,
                       timeout=900, cwd=str(VENV.parent))
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)
