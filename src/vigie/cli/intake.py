"""Reports of URLs and what follows them: `vigie report`, `crawl`, `provider`, `notices`, `escalate`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from vigie.cli.common import (
    DataDirOpt,
    JsonOpt,
    emit_json,
    err,
    open_store,
    out,
    progress,
)

provider_app = typer.Typer(help="Hosting providers: where takedown notices go (matched by domain or network).",
                           no_args_is_help=True)


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


report_app = typer.Typer(help="Reports of URLs (as the public form takes them, e.g. typed in from a phone call).",
                         no_args_is_help=True)


@report_app.command("submit")
def report_submit(urls: list[str] = typer.Argument(..., help="The reported addresses."),
                  description: str = typer.Option(None, "--description"),
                  seen: list[str] = typer.Option([], "--seen", help="image, video, text or other (repeatable)."),
                  contact: str = typer.Option(None, "--contact"),
                  render: bool = typer.Option(False, "--render", help="Open its pages in the crawler's browser "
                                              "(pictures inserted by script, single-page apps; docs/intake.md)."),
                  data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Record a report; the crawler checks its URLs on its next round (`vigie crawl`)."""
    from vigie.ingest import reports

    store, settings = open_store(data_dir)
    got = reports.submit(store, urls, description=description, seen=seen, contact=contact, channel="staff",
                         max_urls=settings.report_max_urls, by="cli")
    if render:
        from vigie.ingest.crawl_plans import ask_render_report

        got["render"] = len(ask_render_report(store, got["reference"]))
    emit_json(got) if json_out else out.print(f"report [bold]{got['reference']}[/]: {got['urls']} URL(s), "
                                              f"{got['joined_existing']} joined an existing case")


@report_app.command("render")
def report_render(reference: str, off: bool = typer.Option(False, "--off", help="Stop rendering its pages."),
                  data_dir: Path = DataDirOpt, json_out: bool = JsonOpt) -> None:
    """Have the crawler open a report's pages in its browser at their next crawl (or stop doing so)."""
    from vigie.ingest.crawl_plans import ask_render_report

    store, _ = open_store(data_dir)
    ids = ask_render_report(store, reference, render=not off)
    emit_json({"reference": reference, "urls": len(ids), "render": not off}) if json_out else out.print(
        f"report {reference}: {len(ids)} URL(s) {'will not be' if off else 'will be'} rendered at their next crawl")


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
