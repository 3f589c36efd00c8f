"""`vigie demo`: benign generated material to try Vigie on (never anything real)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.table import Table

from vigie.cli.common import (
    JsonOpt,
    emit_json,
    err,
    open_store,
    out,
)

demo_app = typer.Typer(help="Benign demo material.", no_args_is_help=True)


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
