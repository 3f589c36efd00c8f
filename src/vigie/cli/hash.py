"""`vigie hash` and `vigie match`: hash files, and match files or hashes against the banks."""

from __future__ import annotations

import os
import string
from collections.abc import Iterable
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vigie.cli.common import (
    DataDirOpt,
    JsonOpt,
    display,
    emit_json,
    err,
    open_store,
    out,
    progress,
    settings_from,
)
from vigie.errors import InvalidHash, VigieError

_HEX = frozenset(string.hexdigits)


def _check_hash_input(h: str, signal: str | None) -> str:
    """An argument that names no file is taken as a hash: say plainly when it cannot be one (a mistyped
    path is the usual cause), rather than what the signal lookup says of it."""
    v = h.strip().lower().removeprefix("0x")
    if signal is None and (len(v) not in (32, 40, 64) or not set(v) <= _HEX):
        raise InvalidHash(f"{h[:80]!r} is not a file here, nor a hash: give a file or folder that exists, or a "
                          "hash of 32 (MD5), 40 (SHA-1) or 64 (PDQ) hex characters, or name its type with --signal")
    return h


def hash_cmd(
    paths: list[str] = typer.Argument(..., help="Files or folders."),
    json_out: bool = JsonOpt,
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into folders."),
    workers: int = typer.Option(0, "--workers", "-w", min=0, help="Processes (default: one per core)."),
    variants: bool = typer.Option(False, "--variants", help="Add PDQ hashes of rotations, mirrors, "
                                  "de-bordered and cropped versions."),
    fast: bool = typer.Option(False, "--fast", help="Decode JPEGs at reduced scale: faster, moves a few PDQ bits."),
    engine: str = typer.Option(None, "--engine", help="PDQ engine: numba (default) or reference."),
    max_pixels: int = typer.Option(None, "--max-pixels", min=1, help="Largest picture decoded, in pixels."),
) -> None:
    """Hash files: MD5, SHA-1, SHA-256 of the bytes and PDQ of the pixels."""
    from vigie.batch import hash_many
    from vigie.ingest.files import iter_files

    settings = settings_from(workers=workers or None, fast_decode=fast or None, pdq_engine=engine,
                             max_pixels=max_pixels)
    items = iter_files(paths, recursive=recursive)
    n_workers = settings.effective_workers
    small = len(paths) <= 4 and not recursive
    failed = 0
    rows: list = []
    with progress(True, "hashing") as bar:
        task = bar.add_task("hash", total=None)
        for rec in hash_many(items, settings, workers=1 if small else n_workers, variants=variants):
            bar.advance(task)
            failed += not rec.ok
            if json_out:
                emit_json(rec.as_dict())
            else:
                rows.append(rec)
                if len(rows) >= 500:
                    _print_hash_table(rows)
                    rows = []
    if not json_out:
        _print_hash_table(rows)
        if failed:
            err.print(f"[yellow]{failed} file(s) could not be hashed fully (see the error column).[/]")
    raise typer.Exit(1 if failed else 0)


def _print_hash_table(rows: Iterable) -> None:
    rows = list(rows)
    if not rows:
        return
    t = Table(show_edge=False, pad_edge=False)
    t.add_column("path", overflow="fold")
    for col in ("type", "size", "pdq", "q"):
        t.add_column(col, no_wrap=True)
    t.add_column("md5 / error", overflow="fold")
    for r in rows:
        last = r.md5 or "" if r.ok else f"[red]{r.error.code}[/]: {r.error.message}"
        t.add_row(display(r.path), r.media_type or "-", f"{r.size:,}" if r.size is not None else "-",
                  r.pdq or "-", str(r.pdq_quality) if r.pdq_quality is not None else "-", last)
    out.print(t)


def match_cmd(
    inputs: list[str] = typer.Argument(..., help="Files, folders (with -r) or hashes."),
    bank: list[str] = typer.Option(None, "--bank", "-b", help="Only these banks (repeat)."),
    threshold: int = typer.Option(None, "--threshold", "-t", min=0, max=128, help="PDQ distance (default 31)."),
    signal: str = typer.Option(None, "--signal", help="Signal of hash arguments (default: from length; "
                               "64 hex means PDQ, give --signal sha256 for SHA-256)."),
    recursive: bool = typer.Option(False, "--recursive", "-r"),
    no_dihedral: bool = typer.Option(False, "--no-dihedral", help="Do not try rotations and mirrors."),
    variants: bool = typer.Option(False, "--variants", help="Also try de-bordered and screenshot-region variants."),
    data_dir: Path = DataDirOpt, json_out: bool = JsonOpt,
) -> None:
    """Match files or hashes against the banks."""
    from vigie.batch import hash_many
    from vigie.ingest.files import iter_files
    from vigie.matching import Matcher, Query

    store, settings = open_store(data_dir)
    if no_dihedral:
        settings = settings.model_copy(update={"dihedral": False})
    matcher = Matcher(store, settings)
    matcher.refresh()
    hashes = [x for x in inputs if not os.path.lexists(x)]
    paths = [x for x in inputs if os.path.lexists(x)]
    queries: list = []
    failed = 0
    for h in hashes:
        try:
            queries.append(Query.from_hash(_check_hash_input(h, signal), signal))
        except VigieError as exc:
            failed += 1
            emit_json({"input": h, "error": exc.as_dict()}) if json_out else \
                err.print(f"[red]{escape(h)}[/]: {exc.code}: {escape(exc.message)}")
    want_variants = variants or settings.dihedral
    fn_settings = settings if variants else settings.model_copy(update={"variant_unbordered": False,
                                                                         "variant_region": False})
    with progress(True, "hashing") as bar:
        task = bar.add_task("hash", total=None)
        for rec in hash_many(iter_files(paths, recursive=recursive), fn_settings,
                             workers=1 if len(paths) <= 4 and not recursive else None, variants=want_variants):
            bar.advance(task)
            if rec.pdq is None and not rec.md5:
                failed += 1
                emit_json({"input": rec.path, "error": rec.error.as_dict()}) if json_out else \
                    err.print(f"[red]{display(rec.path)}[/]: {rec.error.code}: {rec.error.message}")
                continue
            failed += not rec.ok
            queries.append(Query.from_record(rec))
    results = matcher.match(queries, banks=bank or None, threshold=threshold)
    if json_out:
        for r in results:
            emit_json(r.as_dict())
    else:
        t = Table(show_edge=False)
        for col in ("input", "bank", "signal", "category", "distance", "variant"):
            t.add_column(col, overflow="fold")
        for r in results:
            if not r.matches:
                t.add_row(display(r.input), "[dim]no match[/]", "", "", "", "")
            for m in r.matches:
                var = f"{m.query_variant}/{m.entry_variant}" if m.signal == "pdq" else ""
                t.add_row(display(r.input), m.bank, m.signal, m.category or "-", str(m.distance), var)
        out.print(t)
    raise typer.Exit(1 if failed else 0)
