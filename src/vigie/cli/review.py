"""`vigie review`: the review queue's housekeeping from the command line."""

from __future__ import annotations

from pathlib import Path

import typer

from vigie.cli.common import (
    DataDirOpt,
    JsonOpt,
    emit_json,
    open_store,
    out,
)

review_app = typer.Typer(help="The review queue from the command line.", no_args_is_help=True)


@review_app.command("purge")
def review_purge(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Delete review media whose decision is older than VIGIE_MEDIA_RETENTION_DAYS (hashes and decisions stay).

    `vigie serve` runs this at start and every hour; run it from cron where the app does not run."""
    from vigie.review.clock import SystemClock
    from vigie.review.media import purge_decided

    store, settings = open_store(data_dir)
    res = purge_decided(store, settings, SystemClock())
    emit_json(res) if json_out else out.print(f"purged: {res}")
