"""`vigie bank`: create banks, import and export hash lists, remove and restore entries, hygiene."""

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
from rich.table import Table

from vigie.cli.common import (
    DataDirOpt,
    JsonOpt,
    emit_json,
    err,
    open_store,
    out,
    warn,
)
from vigie.errors import UsageError

bank_app = typer.Typer(help="Hash banks: create, import, export, remove entries, hygiene.", no_args_is_help=True)


def _verdict(text: str | None):
    if not text:
        return None
    from vigie.banks.verdict import parse_verdict

    try:
        return parse_verdict(text)
    except ValueError as exc:
        raise UsageError(f"bad category {text!r}: {exc}", code="bad_category") from None


def _bank_dict(info) -> dict:
    return {**info.as_dict(), "pdq_quality_floor": (info.meta or {}).get("pdq_quality_floor")}


@bank_app.command("create")
def bank_create(name: str, description: str = typer.Option("", "--description", "-d"),
                source: str = typer.Option("", "--source", help="Who gave this list."),
                category: str = typer.Option(None, "--category", help="Default verdict: scheme:label (uk:A, "
                                             "vics_us:1) or facets (legality=baseline,age_band=prepubescent)."),
                kind: str = typer.Option("match", "--kind", help="match, or suppression (known false positives)."),
                threshold: int = typer.Option(None, "--threshold", min=0, max=128,
                                              help="PDQ distance for this bank (default: the query's)."),
                quality_floor: int = typer.Option(None, "--quality-floor", min=0, max=100,
                                                  help="PDQ quality a query needs to match this bank by PDQ "
                                                  "(default: VIGIE_PDQ_QUALITY_FLOOR, 50)."),
                data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Create a bank."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    meta = {"pdq_quality_floor": quality_floor} if quality_floor is not None else None
    info = service.create_bank(store, name, description=description, source=source,
                               default_verdict=_verdict(category), kind=kind, pdq_threshold=threshold, meta=meta)
    emit_json(_bank_dict(info)) if json_out else out.print(f"created bank [bold]{info.name}[/]")


@bank_app.command("set")
def bank_set(name: str, enable: bool = typer.Option(None, "--enable/--disable", help="Use for matching or not."),
             threshold: int = typer.Option(None, "--threshold", min=0, max=128),
             kind: str = typer.Option(None, "--kind"), description: str = typer.Option(None, "--description"),
             category: str = typer.Option(None, "--category"),
             quality_floor: int = typer.Option(None, "--quality-floor", min=-1, max=100,
                                               help="PDQ quality a query needs to match this bank by PDQ; -1 "
                                               "goes back to VIGIE_PDQ_QUALITY_FLOOR."),
             data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Change a bank's settings."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    changes = {k: v for k, v in {"enabled": enable, "pdq_threshold": threshold, "kind": kind,
                                 "description": description, "default_verdict": _verdict(category)}.items()
               if v is not None}
    if quality_floor is not None:
        meta = dict(service.get_bank(store, name).meta or {})
        meta.pop("pdq_quality_floor", None)
        changes["meta"] = meta if quality_floor < 0 else {**meta, "pdq_quality_floor": quality_floor}
    info = service.update_bank(store, name, **changes)
    emit_json(_bank_dict(info)) if json_out else out.print(f"updated bank [bold]{info.name}[/]")


@bank_app.command("review-target")
def bank_review_target(name: str, open_: bool = typer.Option(..., "--open/--close", help="Open the bank to "
                                                             "analysts' review decisions, or close it."),
                       by: str = typer.Option(None, "--by", help="Who does it (audited; default $USER)."),
                       data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Open or close a bank to review decisions (imported, partner and published banks are closed by default)."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    info = service.set_review_target(store, name, open_, by=by or os.environ.get("USER") or "admin")
    emit_json(info.as_dict()) if json_out else out.print(
        f"bank [bold]{info.name}[/] is {'open' if info.review_target else 'closed'} to review decisions")


@bank_app.command("list")
def bank_list(data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """List banks with their entry counts."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    banks = service.list_banks(store)
    if json_out:
        for b in banks:
            emit_json(_bank_dict(b))
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
                fmt: str = typer.Option(None, "--format", "-f",
                                        help="csv, text, vics, te or iped (default: detected)."),
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
def bank_export(name: str, file: Path,
                fmt: str = typer.Option(..., "--format", "-f", help="csv, text, vics, te or iped."),
                include_removed: bool = typer.Option(False, "--include-removed",
                                                     help="Write tombstones too (formats that can say so)."),
                shape: str = typer.Option(None, "--shape", help="vics: media (hash set, the default) or cases; "
                                          "te: lines (the default) or csv."),
                profile: str = typer.Option(None, "--profile", help="vics: Default, US, UK or CUSTOM (default: the "
                                            "profile the bank came in, else Default)."),
                vics_version: str = typer.Option(None, "--vics-version", help="vics: 2.0 or 1.3 (also 1.1, 1.2; "
                                                 "default: the version the bank came in, else 2.0)."),
                bank_category: bool = typer.Option(True, "--bank-category/--no-bank-category",
                                                   help="Write the bank's default category on entries without "
                                                   "their own (vics, csv)."),
                signal: str = typer.Option(None, "--signal", help="text, te: which signal to write."),
                data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Export a bank to a file in one of the field's formats (written whole or not at all).

    What the format cannot carry (a VICS Media without an MD5, tombstones) is counted and named in a
    warning on stderr and in the --json result."""
    from vigie.banks import service

    store, _ = open_store(data_dir)
    opts = {k: v for k, v in {"shape": shape, "signal": signal, "profile": profile,
                              "version": vics_version}.items() if v}
    if not bank_category:
        opts["bank_category"] = False
    report: dict = {}
    tmp = file.with_name(file.name + ".part")
    try:
        with open(tmp, "wb") as f:
            n = service.export_file(store, name, f, fmt, include_removed=include_removed, report=report, **opts)
        tmp.replace(file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for line in _left_out_lines(report):
        warn(line)
    if json_out:
        emit_json({"bank": name, "file": str(file), "format": fmt, "entries": n, **report})
    else:
        out.print(f"wrote {n:,} entries of {name} to {file} ({fmt})")


def _left_out_lines(report: dict) -> list[str]:
    lines = [f"{v['count']:,} entr(y/ies) left out ({WHY.get(k, k)}), e.g. {', '.join(v['examples'][:3])}"
             for k, v in (report.get("left_out_by_reason") or {}).items()]
    return lines + list(report.get("warnings") or [])


WHY = {"no_md5": "a VICS Media needs an MD5", "removed": "the format cannot say 'removed'",
       "other_signal": "not the signal asked for"}


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
