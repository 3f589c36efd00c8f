"""What every command of the `vigie` shell shares: the two consoles, the common options, settings and store
opening, JSON lines on stdout, and the one shape of an error.

Errors have one shape whatever the command: with `--json`, one JSON object on stdout,
``{"error": {"code": "...", "message": "..."}}`` (plus the command's own keys such as ``bank`` or ``input``
where it reports a failure itself), so a script reads stdout only; without it, a line on stderr. Progress bars
and warnings go to stderr so stdout stays clean.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from vigie.errors import ErrorRecord, UsageError, VigieError
from vigie.settings import Settings

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="One JSON object per line on stdout.")
DataDirOpt = typer.Option(None, "--data-dir", help="Data folder (default: $VIGIE_DATA_DIR or ~/.local/share/vigie).")


def settings_from(data_dir: Path | None = None, **overrides) -> Settings:
    try:
        if data_dir is not None:
            overrides["data_dir"] = data_dir
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except Exception as exc:  # pydantic ValidationError: a setting is wrong
        raise UsageError(f"bad setting: {exc}") from None


def open_store(data_dir: Path | None = None):
    from vigie.store import Store

    settings = settings_from(data_dir)
    return Store.open(settings), settings


def emit_json(obj: dict) -> None:
    # ensure_ascii keeps undecodable file names (surrogate escapes) printable.
    sys.stdout.write(json.dumps(obj, ensure_ascii=True, default=str) + "\n")
    sys.stdout.flush()


def display(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "replace")


def progress(enabled: bool, label: str, total: int | None = None) -> Progress:
    cols = [SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    return Progress(*cols, console=err, disable=not (enabled and err.is_terminal), transient=True)


def error_record(exc: BaseException) -> dict:
    """The one error shape of the shell, for a named error or a bug alike."""
    if isinstance(exc, VigieError):
        return exc.as_dict()
    return ErrorRecord.from_exc(exc).as_dict()


def report_error(exc: BaseException, json_mode: bool, **context) -> None:
    """Say what failed: one JSON object on stdout with --json, one line on stderr otherwise."""
    rec = error_record(exc)
    if json_mode:
        emit_json({**context, "error": rec})
    else:
        err.print(f"[red]error[/] ({rec['code']}): {escape(rec['message'])}", highlight=False)


def warn(message: str) -> None:
    """A warning for the person at the terminal: stderr in both modes (a JSON result carries it as a key)."""
    err.print(f"[yellow]warning[/]: {escape(message)}", highlight=False)
