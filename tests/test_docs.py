"""Docs checked by tests: every setting documented, every error code documented, README commands in CI."""

from __future__ import annotations

import re
from pathlib import Path

from vigie.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "settings.md").read_text()
    missing = [n for n in Settings.model_fields if f"`VIGIE_{n.upper()}`" not in text]
    assert not missing, f"undocumented settings: {missing}"


def test_every_error_code_in_the_code_is_documented():
    text = (ROOT / "docs" / "errors.md").read_text()
    src = "\n".join(p.read_text() for p in (ROOT / "src" / "vigie").rglob("*.py"))
    codes = (set(re.findall(r'ErrorRecord\(\s*"([a-z_]+)"', src)) | set(re.findall(r'code="([a-z_]+)"', src))
             | set(re.findall(r'RowError\([^,()]+,\s*"([a-z_]+)"', src)))
    missing = sorted(c for c in codes if f"`{c}`" not in text)
    assert not missing, f"undocumented error codes: {missing}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
    assert "make demo" in readme
