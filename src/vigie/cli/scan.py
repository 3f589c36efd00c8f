"""`vigie scan`: triage seized media (folders, archives, disk images) against the banks."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from vigie.cli.common import (
    DataDirOpt,
    JsonOpt,
    emit_json,
    err,
    open_store,
    out,
    settings_from,
)
from vigie.settings import FAST_SCAN


def scan_cmd(
    sources: list[str] = typer.Argument(..., help="Folders, archives or disk images (read-only)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Report folder (summary.json, files.csv, VICS, HTML)."),
    bank: list[str] = typer.Option(None, "--bank", "-b", help="Only these banks (repeat)."),
    workers: int = typer.Option(0, "--workers", "-w", min=0, help="Processes (default: one per core)."),
    case: str = typer.Option(None, "--case", help="Case id, recorded in the report."),
    operator: str = typer.Option(None, "--operator", help="Who runs the scan, recorded in the report."),
    queue: bool = typer.Option(False, "--queue", help="Put the unknown pictures and videos in the review queue "
                               "(needs VIGIE_MEDIA_KEY)."),
    thumbnails: bool = typer.Option(False, "--thumbnails", help="Keep blurred grey miniatures of unknown media in "
                                    "the report folder, sealed with the media key (needs VIGIE_MEDIA_KEY); "
                                    "default: no picture is written."),
    source: str = typer.Option("scan", "--source", help="Queue priority source: police, report, crawl, scan."),
    cluster: str = typer.Option(None, "--cluster", help="Hash on Dask: tcp://HOST:8786, or local:N to start N "
                                "local workers (docs/scale.md)."),
    fast: bool = typer.Option(False, "--fast", help="Digests and the plain PDQ only: no rotations, mirrors, "
                              "borders, regions or HMA variant (finds exact and near copies, not altered ones), "
                              "and JPEGs of 1024 px a side or more decoded at reduced scale: their PDQ is a "
                              "few bits off Meta's (flag pdq_reduced). Several times faster."),
    data_dir: Path = DataDirOpt, json_out: bool = JsonOpt,
) -> None:
    """Triage seized media: hash everything once, match against the banks, write a report.

    Resumable: run the same command again after an interruption and it goes on where it stopped.
    """
    from vigie.procs import early_scan_forkserver

    settings = settings_from(data_dir)
    if fast:
        settings = fast_settings(settings)
    # The workers' forkserver first: its preload (hashing code, kernels: about a second of one core) runs on the
    # other core while this process imports the scan's code and opens the store (vigie.procs).
    early_scan_forkserver(settings, workers or None, cluster)
    from rich.progress import DownloadColumn, TimeRemainingColumn, TransferSpeedColumn

    from vigie.ingest.scan import run_scan

    store, _ = open_store(data_dir)
    cols = [SpinnerColumn(), TextColumn("{task.fields[files]:,} files"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*cols, console=err, disable=not err.is_terminal, transient=True) as bar:
        task = bar.add_task("scan", total=None, files=0)

        def tick(p) -> None:
            bar.update(task, total=p.total_bytes or None, completed=p.disk_bytes_done,
                       files=p.files + p.skipped_resume)

        summary = run_scan(store, settings, sources, str(out_dir), banks=bank or None, workers=workers or None,
                           case=case, operator=operator or os.environ.get("USER"), on_item=tick, cluster=cluster,
                           thumbnails=thumbnails)
    if queue:
        from vigie.review.queue import enqueue_scan

        summary["queued"] = enqueue_scan(store, settings, summary["scan_id"], source=source,
                                         by=operator or os.environ.get("USER") or "cli")
    if json_out:
        emit_json(summary)
        return
    c = summary["counts"]["by_class"]
    e = summary["exposure_spared"]
    out.print(f"{summary['counts']['locations']:,} locations: [green]{c['exact']:,} exact[/], "
              f"[cyan]{c['near']:,} near[/], [yellow]{c['unknown']:,} unknown[/] in "
              f"{summary['unknown_clusters']:,} groups, [red]{c['error']:,} errors[/], {c['skipped']:,} skipped.")
    out.print(f"{e['classified_without_viewing']:,} of {e['media_locations']:,} pictures/videos need no viewing "
              f"({e['share']:.1%}). Report: {out_dir / 'report.html'}")
    runs = summary.get("runs") or []
    if len(runs) > 1:
        out.print(f"Resumed: {len(runs) + summary.get('runs_dropped', 0):,} runs "
                  f"({', '.join(r.get('status', 'running') for r in runs)}).")
    if summary.get("evidence_changed"):
        err.print("[bold yellow]Warning:[/] the evidence changed between the runs of this scan: rows stored by an "
                  "earlier run describe it as it was then (summary.json, runs).")


#: What `vigie scan --fast` changes: `vigie.settings.FAST_SCAN` (every query variant off, large JPEGs decoded at
#: reduced scale).
FAST = FAST_SCAN


def fast_settings(settings):
    """The settings of `vigie scan --fast` (`FAST`)."""
    return settings.model_copy(update=FAST)

