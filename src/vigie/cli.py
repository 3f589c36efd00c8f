"""The `vigie` command: a thin shell that parses, calls the library, and turns errors into exit codes.

Exit status: 0 when everything succeeded, 1 when any item failed (each failure is a
record in the output), 2 for bad usage. No traceback reaches the user.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from vigie import __version__
from vigie.errors import UsageError, VigieError
from vigie.settings import Settings

app = typer.Typer(help="Vigie: recognise known material by its hashes so no analyst sees it twice.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
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


def emit_json(obj: dict) -> None:
    # ensure_ascii keeps undecodable file names (surrogate escapes) printable.
    sys.stdout.write(json.dumps(obj, ensure_ascii=True, default=str) + "\n")


def display(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "replace")


def progress(enabled: bool, label: str, total: int | None = None) -> Progress:
    cols = [SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    return Progress(*cols, console=err, disable=not (enabled and err.is_terminal), transient=True)


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        out.print(f"vigie {__version__}")
        raise typer.Exit(0)


@app.command("hash")
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


demo_app = typer.Typer(help="Benign demo material.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


@demo_app.command("images")
def demo_images(folder: Path = typer.Argument(..., help="Folder to write into."),
                count: int = typer.Option(12, "--count", min=1, max=10000),
                json_out: bool = JsonOpt) -> None:
    """Write benign generated pictures (colour fields and shapes) to FOLDER."""
    from vigie.demo import make_demo_folder

    paths = make_demo_folder(folder, count)
    if json_out:
        for p in paths:
            emit_json({"path": str(p)})
    else:
        out.print(f"wrote {len(paths)} benign pictures to {folder}")


@demo_app.command("run")
def demo_run(data_dir: Path = typer.Option(Path("demo-data"), "--data-dir", help="Where the demo store lives."),
             json_out: bool = JsonOpt) -> None:
    """The main job on benign demo data: plant a demo bank, then match a folder of pictures against it."""
    from vigie.batch import hash_many
    from vigie.demo import setup_demo
    from vigie.ingest.files import iter_files
    from vigie.matching import Matcher, Query

    store, settings = open_store(data_dir)
    info = setup_demo(store, settings, data_dir / "pictures")
    matcher = Matcher(store, settings)
    matcher.refresh()
    recs = list(hash_many(iter_files([info["folder"]], recursive=True), settings, variants=settings.dihedral))
    results = matcher.match([Query.from_record(r) for r in recs])
    known = near = unknown = 0
    for r in results:
        exact = any(m.signal != "pdq" for m in r.matches)
        known += exact
        near += bool(r.matches) and not exact
        unknown += not r.matches
        if json_out:
            emit_json(r.as_dict())
    summary = {"pictures": len(results), "known_exact": known, "known_near": near, "unknown_to_review": unknown,
               "data_dir": str(data_dir)}
    if json_out:
        emit_json({"summary": summary})
        return
    t = Table(title="Demo scan (benign generated pictures)", show_edge=False)
    for col in ("picture", "outcome", "bank", "signal", "distance", "variant"):
        t.add_column(col)
    for r in results:
        name = Path(r.input).name
        if not r.matches:
            t.add_row(name, "[yellow]unknown: to review[/]", "", "", "", "")
            continue
        m = r.matches[0]
        outcome = "[green]known (exact)[/]" if m.signal != "pdq" else "[cyan]known (near)[/]"
        t.add_row(name, outcome, m.bank, m.signal, str(m.distance),
                  f"{m.query_variant}/{m.entry_variant}" if m.signal == "pdq" else "")
    out.print(t)
    out.print(f"{known} known by exact hash, {near} by PDQ (altered copies), {unknown} unknown would go to review. "
              f"Store: {data_dir}")


@demo_app.command("serve")
def demo_serve(data_dir: Path = typer.Option(Path("demo-data"), "--data-dir", help="Where the demo store lives."),
               host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8000, "--port"),
               setup_only: bool = typer.Option(False, "--setup-only", help="Prepare the demo, do not serve.")) -> None:
    """The main job on benign demo data: the web app with a demo bank and a demo scan in the review queue."""
    from vigie.demo import demo_media_key, setup_demo_app
    from vigie.web import serve

    os.environ.setdefault("VIGIE_MEDIA_KEY", demo_media_key(data_dir))
    store, settings = open_store(data_dir)
    info = setup_demo_app(store, settings, data_dir)
    if not setup_only:  # the intake flow: a benign site on loopback, reported, crawled by the app's worker
        from vigie.demo import setup_demo_intake
        from vigie.demo_site import gallery, serve_in_thread

        site_url = serve_in_thread(gallery(30))
        settings = settings.model_copy(update={"crawl_allowed_networks": ["127.0.0.1/32"],
                                               "crawl_interval_seconds": 10.0})
        rep = setup_demo_intake(store, settings, site_url)
        err.print(f"demo site {site_url}/page/0.html reported as {rep['reference']}: the worker crawls it within "
                  "seconds (see Reports, Takedown, Statistics)")
    scan = info["scan"]
    err.print(f"demo scan: {scan['exact']} known by hash, {scan['near']} altered copies, {scan['unknown']} unknown "
              f"-> review queue ({info['queued']})")
    for name, pw in info["accounts"].items():
        err.print(f"demo account [bold]{name}[/]: one-time password [bold]{pw}[/]")
    if not info["accounts"]:
        err.print("demo accounts exist already (vigie user reset-password NAME gives a new password)")
    if setup_only:
        return
    err.print(f"open http://{host}:{port}/ (Ctrl-C to stop)")
    serve(settings, host, port)


def open_store(data_dir: Path | None = None):
    from vigie.store import Store

    settings = settings_from(data_dir)
    return Store.open(settings), settings


bank_app = typer.Typer(help="Hash banks: create, import, export, remove entries, hygiene.", no_args_is_help=True)
app.add_typer(bank_app, name="bank")


def _verdict(text: str | None):
    if not text:
        return None
    from vigie.banks.verdict import parse_verdict

    try:
        return parse_verdict(text)
    except ValueError as exc:
        raise UsageError(f"bad category {text!r}: {exc}", code="bad_category") from None


@bank_app.command("create")
def bank_create(name: str, description: str = typer.Option("", "--description", "-d"),
                source: str = typer.Option("", "--source", help="Who gave this list."),
                category: str = typer.Option(None, "--category", help="Default verdict: scheme:label (uk:A, "
                                             "vics_us:1) or facets (legality=baseline,age_band=prepubescent)."),
                kind: str = typer.Option("match", "--kind", help="match, or suppression (known false positives)."),
                threshold: int = typer.Option(None, "--threshold", min=0, max=128,
                                              help="PDQ distance for this bank (default: the query's)."),
                data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Create a bank."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    info = service.create_bank(store, name, description=description, source=source,
                               default_verdict=_verdict(category), kind=kind, pdq_threshold=threshold)
    emit_json(info.as_dict()) if json_out else out.print(f"created bank [bold]{info.name}[/]")


@bank_app.command("set")
def bank_set(name: str, enable: bool = typer.Option(None, "--enable/--disable", help="Use for matching or not."),
             threshold: int = typer.Option(None, "--threshold", min=0, max=128),
             kind: str = typer.Option(None, "--kind"), description: str = typer.Option(None, "--description"),
             category: str = typer.Option(None, "--category"),
             data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Change a bank's settings."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    changes = {k: v for k, v in {"enabled": enable, "pdq_threshold": threshold, "kind": kind,
                                 "description": description, "default_verdict": _verdict(category)}.items()
               if v is not None}
    info = service.update_bank(store, name, **changes)
    emit_json(info.as_dict()) if json_out else out.print(f"updated bank [bold]{info.name}[/]")


@bank_app.command("list")
def bank_list(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """List banks with their entry counts."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    banks = service.list_banks(store)
    if json_out:
        for b in banks:
            emit_json(b.as_dict())
        return
    t = Table(show_edge=False)
    for col in ("name", "kind", "enabled", "threshold", "entries", "removed", "source"):
        t.add_column(col)
    for b in banks:
        live = sum(v for k, v in b.counts.items() if k != "removed")
        detail = ", ".join(f"{k} {v:,}" for k, v in sorted(b.counts.items()) if k != "removed")
        t.add_row(b.name, b.kind, "yes" if b.enabled else "no", str(b.pdq_threshold or "-"),
                  f"{live:,} ({detail})" if live else "0", f"{b.counts.get('removed', 0):,}", b.source)
    out.print(t)


@bank_app.command("import")
def bank_import(name: str, file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
                fmt: str = typer.Option(None, "--format", "-f", help="csv, text, vics or te (default: detected)."),
                skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Import good rows, report bad ones."),
                signal: str = typer.Option(None, "--signal", help="Signal type for plain lists (pdq, md5...)."),
                by: str = typer.Option(None, "--by", help="Who adds these entries (recorded)."),
                data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Import a hash list into a bank, atomically."""
    from vigie.banks import service
    from vigie.banks.formats import detect_format
    from vigie.errors import FormatError

    store, _ = open_store(data_dir)
    with open(file, "rb") as f:
        if fmt is None:
            fmt = detect_format(f.read(8192), file.name)
            f.seek(0)
        total = file.stat().st_size
        with Progress(SpinnerColumn(), TextColumn("importing"), BarColumn(), TimeElapsedColumn(), console=err,
                      disable=not err.is_terminal, transient=True) as bar:
            task = bar.add_task("import", total=total)
            try:
                rep = service.import_file(store, name, f, fmt, skip_invalid=skip_invalid, signal=signal,
                                          added_by=by or os.environ.get("USER"),
                                          progress=lambda _line: bar.update(task, completed=f.tell()))
            except FormatError as exc:
                if json_out:
                    emit_json({"bank": name, "error": exc.as_dict()})
                else:
                    err.print(f"[red]refused[/] ({exc.code}): {exc.message}")
                    for r in exc.rows[:50]:
                        err.print(f"  line {r.line}: {r.code}: {r.message}")
                    if len(exc.rows) > 50:
                        err.print(f"  ... and {len(exc.rows) - 50} more (use --json for all)")
                raise typer.Exit(1) from None
    if json_out:
        emit_json({**rep.as_dict(), "format": fmt})
    else:
        out.print(f"{name}: {rep.added:,} added, {rep.merged:,} merged into existing entries, "
                  f"{rep.tombstoned:,} kept removed, {rep.skipped_count:,} bad rows skipped")
        for r in rep.skipped[:20]:
            err.print(f"  skipped line {r.line}: {r.code}: {r.message}")
    raise typer.Exit(0)


@bank_app.command("add")
def bank_add(name: str, files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True),
             category: str = typer.Option(None, "--category", help="scheme:label or facets, as in bank create."),
             tag: list[str] = typer.Option(None, "--tag", help="Tag (repeat)."),
             note: str = typer.Option(None, "--note"), by: str = typer.Option(None, "--by"),
             data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Add pictures or videos you hold to a bank: all their hashes, plus crop and border variants of pictures."""
    from vigie.banks import service

    store, settings = open_store(data_dir)
    failed = 0
    for f in files:
        res = service.add_media(store, name, f.read_bytes(), settings, path=str(f), verdict=_verdict(category),
                                tags=list(tag or []), note=note, added_by=by or os.environ.get("USER"))
        failed += res.error is not None and not res.entries.get("pdq")
        if json_out:
            emit_json(res.as_dict())
        else:
            extra = f" (variants: {', '.join(res.variants)})" if res.variants else ""
            msg = f"{f}: {', '.join(res.entries)}{extra}"
            if res.error:
                msg += f" [yellow]{res.error.code}: {res.error.message}[/]"
            out.print(msg)
    raise typer.Exit(1 if failed else 0)


@bank_app.command("export")
def bank_export(name: str, file: Path, fmt: str = typer.Option(..., "--format", "-f", help="csv, text, vics or te."),
                include_removed: bool = typer.Option(False, "--include-removed",
                                                     help="Write tombstones too (formats that can say so)."),
                shape: str = typer.Option(None, "--shape", help="VICS: media (hash set) or cases."),
                signal: str = typer.Option(None, "--signal", help="text: which signal to write."),
                data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Export a bank to a file in one of the field's formats."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    opts = {k: v for k, v in {"shape": shape, "signal": signal}.items() if v}
    tmp = file.with_name(file.name + ".part")
    with open(tmp, "wb") as f:
        n = service.export_file(store, name, f, fmt, include_removed=include_removed, **opts)
    tmp.replace(file)
    emit_json({"bank": name, "file": str(file), "format": fmt, "entries": n}) if json_out else \
        out.print(f"wrote {n:,} entries of {name} to {file} ({fmt})")


@bank_app.command("remove")
def bank_remove(name: str, value: str, signal: str = typer.Option(None, "--signal"),
                reason: str = typer.Option(None, "--reason", help="Why (e.g. false positive)."),
                by: str = typer.Option(None, "--by"), data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Remove an entry; it stays as a tombstone so no re-import brings it back."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    n = service.remove_entry(store, name, value, signal=signal, by=by or os.environ.get("USER"), reason=reason)
    emit_json({"bank": name, "value": value, "removed": n}) if json_out else out.print(f"removed {n} entr(y/ies)")


@bank_app.command("restore")
def bank_restore(name: str, value: str, signal: str = typer.Option(None, "--signal"),
                 data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Bring a removed entry back."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    n = service.restore_entry(store, name, value, signal=signal)
    emit_json({"bank": name, "value": value, "restored": n}) if json_out else out.print(f"restored {n}")


@bank_app.command("disable-entry")
def bank_disable_entry(name: str, value: str, enable: bool = typer.Option(False, "--enable", help="Enable again."),
                       signal: str = typer.Option(None, "--signal"),
                       data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Stop (or with --enable, resume) matching one entry, without removing it."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    n = service.set_disabled(store, name, value, not enable, signal=signal)
    emit_json({"bank": name, "value": value, "disabled": not enable, "entries": n}) if json_out else \
        out.print(f"{'enabled' if enable else 'disabled'} {n} entr(y/ies)")


@bank_app.command("quarantine")
def bank_quarantine(release: int = typer.Option(None, "--release", help="Entry id to release."),
                    data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """List entries quarantined for a flood of matches, or release one."""
    from sqlalchemy import select

    from vigie.banks import service
    from vigie.store.models import Bank, Entry

    store, _ = open_store(data_dir)
    if release is not None:
        service.release_quarantine(store, release)
        emit_json({"released": release}) if json_out else out.print(f"released entry {release}")
        return
    with store.sessions() as s:
        rows = s.execute(select(Entry, Bank.name).join(Bank).where(Entry.quarantined_at.is_not(None))).all()
    for e, bank in rows:
        d = {"entry_id": e.id, "bank": bank, "signal": e.signal, "value": e.value,
             "quarantined_at": e.quarantined_at.isoformat(), "reason": e.quarantine_reason}
        emit_json(d) if json_out else out.print(f"{e.id} {bank} {e.signal} {e.value}: {e.quarantine_reason}")


@app.command("match")
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
            queries.append(Query.from_hash(h, signal))
        except VigieError as exc:
            failed += 1
            emit_json({"input": h, "error": exc.as_dict()}) if json_out else \
                err.print(f"[red]{h}[/]: {exc.code}: {exc.message}")
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


@app.command("scan")
def scan_cmd(
    sources: list[str] = typer.Argument(..., help="Folders, archives or disk images (read-only)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Report folder (summary.json, files.csv, VICS, HTML)."),
    bank: list[str] = typer.Option(None, "--bank", "-b", help="Only these banks (repeat)."),
    workers: int = typer.Option(0, "--workers", "-w", min=0, help="Processes (default: one per core)."),
    case: str = typer.Option(None, "--case", help="Case id, recorded in the report."),
    operator: str = typer.Option(None, "--operator", help="Who runs the scan, recorded in the report."),
    queue: bool = typer.Option(False, "--queue", help="Put the unknown pictures and videos in the review queue "
                               "(needs VIGIE_MEDIA_KEY)."),
    source: str = typer.Option("scan", "--source", help="Queue priority source: police, report, crawl, scan."),
    cluster: str = typer.Option(None, "--cluster", help="Hash on Dask: tcp://HOST:8786, or local:N to start N "
                                "local workers (docs/scale.md)."),
    data_dir: Path = DataDirOpt, json_out: bool = JsonOpt,
) -> None:
    """Triage seized media: hash everything once, match against the banks, write a report.

    Resumable: run the same command again after an interruption and it goes on where it stopped.
    """
    from rich.progress import DownloadColumn, TimeRemainingColumn, TransferSpeedColumn

    from vigie.ingest.scan import run_scan

    store, settings = open_store(data_dir)
    cols = [SpinnerColumn(), TextColumn("{task.fields[files]:,} files"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*cols, console=err, disable=not err.is_terminal, transient=True) as bar:
        task = bar.add_task("scan", total=None, files=0)

        def tick(p) -> None:
            bar.update(task, total=p.total_bytes or None, completed=p.disk_bytes_done,
                       files=p.files + p.skipped_resume)

        summary = run_scan(store, settings, sources, str(out_dir), banks=bank or None, workers=workers or None,
                           case=case, operator=operator or os.environ.get("USER"), on_item=tick, cluster=cluster)
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


audit_app = typer.Typer(help="The audit trail: verify the hash chain, export it.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Check the audit trail's hash chain; exit status 1 when a record was changed, removed or inserted."""
    from vigie import audit

    store, _ = open_store(data_dir)
    v = audit.verify(store)
    if json_out:
        emit_json(v.as_dict())
    elif v.ok:
        out.print(f"[green]audit trail intact[/]: {v.records:,} records, last hash {v.last_hash}")
    else:
        err.print(f"[red]audit trail broken[/] at record {v.first_bad_seq}: {v.reason}")
    raise typer.Exit(0 if v.ok else 1)


@audit_app.command("export")
def audit_export(file: Path, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Write the audit trail as JSON lines (each record with its hashes)."""
    from vigie import audit

    store, _ = open_store(data_dir)
    with open(file, "w") as f:
        n = audit.export(store, f)
    emit_json({"file": str(file), "records": n}) if json_out else out.print(f"wrote {n:,} records to {file}")


@app.command("serve")
def serve_cmd(host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
              port: int = typer.Option(8000, "--port", min=1, max=65535),
              proxy_headers: bool = typer.Option(False, "--proxy-headers", help="Trust X-Forwarded-* from a proxy."),
              workers: int = typer.Option(1, "--workers", min=1, help="Server processes (one per core for a busy "
                                          "match API)."),
              intake_worker: bool = typer.Option(True, "--intake-worker/--no-intake-worker",
                                                 help="Run the crawler and takedown worker in this process "
                                                 "(turn off where `vigie crawl --loop` runs elsewhere)."),
              data_dir: Path = DataDirOpt) -> None:
    """Start the analysts' web app (and the intake worker). The first start creates an admin whose one-time
    password is printed once."""
    from vigie.web import serve

    settings = settings_from(data_dir)
    serve(settings, host, port, proxy_headers=proxy_headers, workers=workers, intake_worker=intake_worker)


user_app = typer.Typer(help="Accounts of the web app: analysts, supervisors, admins.", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _user_dict(u) -> dict:
    return {"username": u.username, "role": u.role, "active": u.active}


@user_app.command("add")
def user_add(name: str, role: str = typer.Option("analyst", "--role", help="analyst, supervisor or admin."),
             password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin "
                                                 "(otherwise a one-time password is generated and printed once)."),
             data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Create an account."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    pw = sys.stdin.readline().rstrip("\n") if password_stdin else None
    user, otp = accounts.create_user(store, name, role, pw, actor="cli")
    if json_out:
        emit_json({**_user_dict(user), "one_time_password": otp})
    else:
        out.print(f"created {user.role} [bold]{user.username}[/]")
        if otp:
            out.print(f"one-time password (shown once, change it at first login): [bold]{otp}[/]")


@user_app.command("list")
def user_list(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """List accounts."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    for u in accounts.list_users(store):
        emit_json(_user_dict(u)) if json_out else out.print(f"{u.username}\t{u.role}\t"
                                                           f"{'active' if u.active else 'inactive'}")


@user_app.command("role")
def user_role(name: str, role: str, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Change an account's role."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    u = accounts.set_role(store, name, role, actor="cli")
    emit_json(_user_dict(u)) if json_out else out.print(f"{u.username} is now {u.role}")


@user_app.command("deactivate")
def user_deactivate(name: str, enable: bool = typer.Option(False, "--reactivate", help="Reactivate instead."),
                    data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Deactivate (or --reactivate) an account; a deactivated account's sessions end."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    u = (accounts.reactivate if enable else accounts.deactivate)(store, name, actor="cli")
    emit_json(_user_dict(u)) if json_out else out.print(f"{u.username}: {'active' if u.active else 'inactive'}")


@user_app.command("reset-password")
def user_reset_password(name: str, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Give an account a new one-time password (printed once)."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    pw = accounts.generate_password()
    accounts.set_password(store, name, pw, actor="cli")
    emit_json({"username": name, "one_time_password": pw}) if json_out else \
        out.print(f"new one-time password for {name}: [bold]{pw}[/]")


@user_app.command("logout-everywhere")
def user_logout_everywhere(name: str, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """End every session of an account."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    n = accounts.logout_everywhere(store, name, actor="cli")
    emit_json({"username": name, "sessions_ended": n}) if json_out else out.print(f"ended {n} session(s)")


apikey_app = typer.Typer(help="API keys for platforms and partners (shown once, stored hashed).",
                         no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


@apikey_app.command("create")
def apikey_create(name: str, scope: list[str] = typer.Option(["match"], "--scope",
                                                              help="match, banks:NAME, ... (repeat)."),
                  rate_limit: int = typer.Option(None, "--rate-limit", min=1, help="Requests a minute."),
                  data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Create an API key; its secret is printed once and only its hash is kept."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    key, secret = accounts.create_api_key(store, name, list(scope), "cli", rate_limit_per_minute=rate_limit)
    if json_out:
        emit_json({"id": key.id, "name": key.name, "scopes": key.scopes, "secret": secret})
    else:
        out.print(f"API key {key.id} ({key.name}, scopes {', '.join(key.scopes)}): [bold]{secret}[/]")
        out.print("Keep it now: Vigie stores only its hash and cannot show it again.")


@apikey_app.command("list")
def apikey_list(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """List API keys (by prefix; secrets are never shown)."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    for k in accounts.list_api_keys(store):
        d = {"id": k.id, "name": k.name, "prefix": k.prefix, "scopes": k.scopes,
             "revoked": k.revoked_at is not None}
        state = "revoked" if d["revoked"] else "active"
        emit_json(d) if json_out else out.print(f"{k.id}\t{k.prefix}\t{k.name}\t{','.join(k.scopes)}\t{state}")


@apikey_app.command("revoke")
def apikey_revoke(key_id: int, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Revoke an API key at once."""
    from vigie import accounts

    store, _ = open_store(data_dir)
    k = accounts.revoke_api_key(store, key_id, actor="cli")
    emit_json({"id": k.id, "revoked": True}) if json_out else out.print(f"revoked key {k.id}")


review_app = typer.Typer(help="The review queue from the command line.", no_args_is_help=True)
app.add_typer(review_app, name="review")


@review_app.command("purge")
def review_purge(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Delete review media whose decision is older than VIGIE_MEDIA_RETENTION_DAYS (hashes and decisions stay).

    `vigie serve` runs this at start and every hour; run it from cron where the app does not run."""
    from vigie.review.clock import SystemClock
    from vigie.review.media import purge_decided

    store, settings = open_store(data_dir)
    res = purge_decided(store, settings, SystemClock())
    emit_json(res) if json_out else out.print(f"purged: {res}")


share_app = typer.Typer(help="Share banks with partner Vigie instances (signed change feeds).",
                        no_args_is_help=True)
app.add_typer(share_app, name="share")


@share_app.command("key")
def share_key(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """This instance's public signing key: give it to partners who subscribe to your banks."""
    from vigie.sharing import feed, keys

    _, settings = open_store(data_dir)
    k = keys.public_key_b64(settings)
    emit_json({"publisher": feed.publisher_name(settings), "public_key": k, "key_id": keys.key_id(k)}) if json_out \
        else out.print(k)


@share_app.command("publish")
def share_publish(bank: str, stop: bool = typer.Option(False, "--stop", help="Stop publishing it."),
                  data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Publish a bank's change feed to partners whose API key holds the scope banks:BANK."""
    from vigie.sharing import feed

    store, _ = open_store(data_dir)
    if stop:
        res = {"bank": bank, "published": False, "was_published": feed.unpublish(store, bank, by="cli")}
    else:
        res = feed.publish(store, bank, by="cli")
    emit_json(res) if json_out else out.print(res)


@share_app.command("subscribe")
def share_subscribe(name: str, url: str = typer.Option(..., "--url", help="The partner's Vigie, e.g. https://..."),
                    remote_bank: str = typer.Option(..., "--remote-bank"),
                    local_bank: str = typer.Option(..., "--local-bank"),
                    publisher_key: str = typer.Option(..., "--publisher-key", help="Their public key (base64)."),
                    api_key_stdin: bool = typer.Option(True, "--api-key-stdin/--no-api-key-stdin",
                                                       help="Read the partner's API key from stdin."),
                    data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Subscribe to a partner's published bank."""
    from vigie.sharing import subscriber

    store, _ = open_store(data_dir)
    api_key = sys.stdin.readline().strip() if api_key_stdin else ""
    if not api_key:
        raise UsageError("give the partner's API key on stdin")
    subscriber.subscribe(store, name, url, remote_bank, local_bank, api_key, publisher_key, by="cli")
    emit_json({"subscription": name}) if json_out else out.print(f"subscribed {name}: {url} {remote_bank} -> "
                                                                    f"{local_bank}")


@share_app.command("list")
def share_list(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Published banks and subscriptions."""
    from vigie.sharing import feed, subscriber

    store, _ = open_store(data_dir)
    pubs, subs = feed.published_banks(store), subscriber.list_subscriptions(store)
    if json_out:
        emit_json({"published": pubs, "subscriptions": subs})
    else:
        out.print(f"published: {', '.join(pubs) or '-'}")
        for x in subs:
            out.print(x)


@app.command("sync")
def sync_cmd(name: str = typer.Argument(None, help="One subscription (default: all)."),
             data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Pull partners' signed changes; a batch that fails verification is refused whole."""
    from vigie.sharing import subscriber

    store, settings = open_store(data_dir)
    results = [subscriber.sync(store, settings, name)] if name else subscriber.sync_all(store, settings)
    for r in results:
        emit_json(r.as_dict()) if json_out else out.print(r.as_dict())
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@app.command("stats")
def stats_cmd(since: str = typer.Option(None, "--since", help="First day included, YYYY-MM-DD (UTC)."),
              until: str = typer.Option(None, "--until", help="Last day included, YYYY-MM-DD (UTC)."),
              csv_file: Path = typer.Option(None, "--csv", help="Also write the per-month table to this CSV file."),
              data_dir: Path = DataDirOpt, json_out: bool = typer.Option(False, "--json", help="One JSON object.")
              ) -> None:
    """Reports, media, notices and removal times per month, provider and country (see docs/statistics.md)."""
    from vigie import stats

    store, _ = open_store(data_dir)
    data = stats.compute(store, since=stats.parse_date(since, "--since"), until=stats.parse_date(until, "--until"))
    if csv_file is not None:
        csv_file.write_text(stats.to_csv(data), encoding="utf-8", newline="")
    if json_out:
        emit_json(data)
        return
    t = Table(title="Per month", show_edge=False)
    cols = ("month", "reports", "founded", "unfounded", "in_review", "media_seen", "known", "new", "notices_sent",
            "removals", "median_hours", "p90_hours", "reports_yoy_pct")
    for c in cols:
        t.add_column(c, justify="left" if c == "month" else "right")
    for m in [*data["months"], {**data["totals"], "month": "total", "reports_yoy_pct": None}]:
        t.add_row(*["-" if m.get(c) is None else str(m[c]) for c in cols])
    out.print(t)
    for name, key, first in (("Per provider", "providers", "provider"), ("Per country", "countries", "country")):
        t = Table(title=name, show_edge=False)
        keys = (first, "notices", "removed", "still_online", "median_hours", "p90_hours")
        for c in keys:
            t.add_column(c, justify="left" if c == first else "right")
        for r in data[key]:
            t.add_row(*["-" if r.get(c) is None else str(r[c]) for c in keys])
        out.print(t)


provider_app = typer.Typer(help="Hosting providers: where takedown notices go (matched by domain or network).",
                           no_args_is_help=True)
app.add_typer(provider_app, name="provider")


@provider_app.command("add")
def provider_add(name: str, email: str = typer.Option(..., "--email", help="Abuse contact address."),
                 domain: list[str] = typer.Option([], "--domain", help="A domain it hosts (suffix match); repeat."),
                 network: list[str] = typer.Option([], "--network", help="An IP network (CIDR); repeat."),
                 asn: list[str] = typer.Option([], "--asn", help="An AS number; repeat."),
                 country: str = typer.Option(None, "--country", help="Two-letter country code."),
                 partner_hotline: str = typer.Option(None, "--partner-hotline", help="The hotline of its country."),
                 language: str = typer.Option(None, "--language", help="Language of its abuse desk, e.g. en."),
                 data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Register a hosting provider for takedown notices."""
    from vigie.actions import takedown

    store, _ = open_store(data_dir)
    p = takedown.add_provider(store, name, email, domains=domain, networks=network, asns=asn, country=country,
                              partner_hotline=partner_hotline, language=language, by="cli")
    emit_json(p) if json_out else out.print(f"provider {p['name']} -> {p['contact_email']}")


@provider_app.command("list")
def provider_list(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Registered providers (inactive ones marked)."""
    from vigie.actions import takedown

    store, _ = open_store(data_dir)
    rows = takedown.list_providers(store)
    if json_out:
        for p in rows:
            emit_json(p)
        return
    t = Table(show_edge=False, pad_edge=False)
    for col in ("name", "email", "domains", "networks", "country", "active"):
        t.add_column(col, overflow="fold")
    for p in rows:
        t.add_row(p["name"], p["contact_email"], " ".join(p["domains"]) or "-", " ".join(p["networks"]) or "-",
                  p["country"] or "-", "yes" if p["active"] else "no")
    out.print(t)


@provider_app.command("remove")
def provider_remove(name: str, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Deactivate a provider (its past notices stay)."""
    from vigie.actions import takedown

    store, _ = open_store(data_dir)
    p = takedown.remove_provider(store, name, by="cli")
    emit_json(p) if json_out else out.print(f"provider {p['name']} deactivated")


notices_app = typer.Typer(help="Takedown notices to hosting providers.", no_args_is_help=True)
app.add_typer(notices_app, name="notices")


@notices_app.command("send")
def notices_send(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Send the due notices (new sightings of known material, and re-notices): one e-mail per provider."""
    from vigie.actions import takedown

    store, settings = open_store(data_dir)
    res = takedown.send_notices(store, settings, by="cli")
    if json_out:
        emit_json(res)
    else:
        out.print(f"sent {res['sent']} notice(s) covering {res['sightings']} sighting(s); failed {res['failed']}; "
                  f"no provider for {res['no_provider']}")
        for n in res["notices"]:
            if n["error"]:
                err.print(f"[yellow]{n['provider']}[/]: {n['error']}")
    raise typer.Exit(1 if res["failed"] else 0)


@app.command("escalate")
def escalate(reference: str, out_file: Path = typer.Option(..., "--out", help="The zip to write."),
             include_media: bool = typer.Option(False, "--include-media",
                                                help="Add unknown media held for review (never known material)."),
             data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Export one report for the police: report, URLs, sightings, notices, audit records, manifest with hashes."""
    from vigie.actions import escalation

    store, settings = open_store(data_dir)
    res = escalation.export_escalation(store, settings, reference, out_file, include_media=include_media, by="cli")
    if json_out:
        emit_json(res)
    else:
        out.print(f"{res['path']}: {res['sightings']} sighting(s), {res['notices']} notice(s), "
                  f"sha256 {res['zip_sha256']}")


@app.command("doctor")
def doctor_cmd(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Check this deployment (settings, database, migrations, index, keys) and say what is wrong."""
    from vigie import doctor

    checks = doctor.run(settings_from(data_dir))
    colour = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c in checks:
        emit_json(c.as_dict()) if json_out else out.print(f"[{colour[c.status]}]{c.status:>4}[/]  {c.name}: "
                                                           f"{c.message}")
    raise typer.Exit(1 if any(c.status == "fail" for c in checks) else 0)


report_app = typer.Typer(help="Reports of URLs (as the public form takes them, e.g. typed in from a phone call).",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("submit")
def report_submit(urls: list[str] = typer.Argument(..., help="The reported addresses."),
                  description: str = typer.Option(None, "--description"),
                  seen: list[str] = typer.Option([], "--seen", help="image, video, text or other (repeatable)."),
                  contact: str = typer.Option(None, "--contact"),
                  data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Record a report; the crawler checks its URLs on its next round (`vigie crawl`)."""
    from vigie.ingest import reports

    store, settings = open_store(data_dir)
    got = reports.submit(store, urls, description=description, seen=seen, contact=contact, channel="staff",
                         max_urls=settings.report_max_urls, by="cli")
    emit_json(got) if json_out else out.print(f"report [bold]{got['reference']}[/]: {got['urls']} URL(s), "
                                              f"{got['joined_existing']} joined an existing case")


@report_app.command("list")
def report_list(status: str = typer.Option(None, "--status", help="received, crawling, founded, in_review, "
                                           "unfounded"),
                limit: int = typer.Option(200, "--limit", min=1), data_dir: Path = DataDirOpt,
                json_out: bool = JsonOpt) -> None:
    """Reports, newest first."""
    from vigie.ingest import reports

    store, _ = open_store(data_dir)
    rows = reports.list_reports(store, status=status, limit=limit)
    if json_out:
        for r in rows:
            emit_json(r)
        return
    t = Table(show_edge=False, pad_edge=False)
    for col in ("reference", "received", "status", "urls", "reason"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["reference"], f"{r['received_at']:%Y-%m-%d %H:%M}", r["status"], str(r["urls"]), r["reason"] or "")
    out.print(t)


@report_app.command("show")
def report_show(reference: str, data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """One report: its URLs, their crawl, and every media found (hashes and outcomes, never the media)."""
    from vigie.ingest import reports

    store, _ = open_store(data_dir)
    d = reports.report_detail(store, reference)
    if json_out:
        emit_json(d)
        return
    out.print(f"[bold]{d['reference']}[/] {d['status']} {d['reason'] or ''}")
    for u in d["urls"]:
        out.print(f"  {u['url']}  crawl={u['crawl_state']} outcome={u['outcome']} pages={u['pages_fetched']} "
                  f"media={u['media_found']} {u['error_code'] or ''}")
        for x in u["sightings"]:
            out.print(f"    {x['outcome']:8} {x['state'] if x['outcome'] == 'known' else '':8} {x['media_url']} "
                      f"{x['category'] or x['error_code'] or ''}")


@app.command("crawl")
def crawl_cmd(loop: bool = typer.Option(False, "--loop", help="Keep going, one round every crawl_interval_seconds."),
              limit: int = typer.Option(20, "--limit", min=1, help="Reported URLs crawled per round."),
              data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """The intake worker: crawl reported URLs, re-check known material, send due takedown notices."""
    import time

    from vigie.ingest import worker

    store, settings = open_store(data_dir)
    while True:
        with progress(True, "crawling") as bar:
            bar.add_task("crawl", total=None)
            got = worker.run_once(store, settings, limit=limit)
        if json_out:
            emit_json(got)
        else:
            c, r = got["crawl"], got["recheck"]
            n = got.get("notices") or {}
            out.print(f"crawled {c['urls']} URL(s): {c['pages']} page(s), {c['media']} media, {c['known']} known, "
                      f"{c['unknown']} new, {c['errors']} unreadable; re-checked {r['checked']}: {r['removed']} "
                      f"removed, {r['changed']} changed; notices sent {n.get('sent', 0)}, failed {n.get('failed', 0)}")
        if not loop:
            return
        time.sleep(settings.crawl_interval_seconds)


def main() -> None:
    """Entry point: library errors become a message and an exit code, never a traceback."""
    try:
        app(standalone_mode=True)
    except VigieError as exc:
        err.print(f"[red]error[/] ({exc.code}): {exc.message}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
