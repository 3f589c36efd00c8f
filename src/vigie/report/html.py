"""report.html: one self-contained page (no network, no build step) an analyst can open anywhere.

No picture is ever in this page: known material is never shown, and unknown material is
listed by cluster, hash and location only. A page that travels with a case file must not
carry pictures nobody has judged. Miniatures exist only when the scan was asked for them
(`vigie scan --thumbnails`), blurred, grey and sealed with the media key in ``thumbs/``
(`vigie.report.thumbs`); the page says how many there are, and never opens them.
"""

from __future__ import annotations

import html
import os

from vigie.report import thumbs

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d232a;max-width:1100px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #e3e6ea;text-align:left}
.bar{fill:#4a6fa5}.bar.exact{fill:#2e7d32}.bar.near{fill:#558b2f}.bar.unknown{fill:#f9a825}
.bar.error{fill:#c62828}.bar.skipped{fill:#9e9e9e}
.note{background:#f4f6f8;padding:.6rem 1rem;border-left:4px solid #4a6fa5}
.warn{background:#fdf3e7;padding:.6rem 1rem;border-left:4px solid #b5651d}
.clusters{display:flex;flex-wrap:wrap;gap:1rem}
.cluster{border:1px solid #d5d9de;border-radius:6px;padding:.5rem;width:220px}
.sha{font:11px ui-monospace,monospace;word-break:break-all;color:#333}
.loc{font-size:12px;word-break:break-all;color:#555}
"""


def _bars(counts: dict, cls: bool = False) -> str:
    items = [(k, v) for k, v in counts.items()]
    if not items:
        return "<p>none</p>"
    top = max(v for _, v in items) or 1
    h = 22 * len(items) + 4
    rows = []
    for i, (k, v) in enumerate(items):
        w = int(360 * v / top)
        c = f"bar {html.escape(k)}" if cls else "bar"
        rows.append(f'<text x="0" y="{22 * i + 16}">{html.escape(str(k))}</text>'
                    f'<rect class="{c}" x="170" y="{22 * i + 4}" width="{w}" height="16"/>'
                    f'<text x="{176 + w}" y="{22 * i + 16}">{v:,}</text>')
    return f'<svg width="640" height="{h}" role="img">{"".join(rows)}</svg>'


def _runs(summary: dict) -> list[str]:
    """The runs of a resumed scan (`vigie.ingest.runs`), and a warning when the evidence changed between them.
    Nothing for a scan done in one run."""
    runs = summary.get("runs") or []
    if len(runs) < 2 and not summary.get("evidence_changed"):
        return []
    parts = []
    if summary.get("evidence_changed"):
        parts.append("<p class='warn'><b>The evidence changed between the runs of this scan.</b> Rows stored by an "
                     "earlier run describe the evidence as it was then; see the runs below and "
                     "<code>summary.json</code> (<code>runs</code>).</p>")
    dropped = summary.get("runs_dropped") or 0
    parts.append(f"<h2>Runs: {len(runs) + dropped:,}</h2><table class='runs'><tr><th>started</th><th>ended</th>"
                 "<th>status</th><th>rows before</th><th>rows after</th><th>walk</th><th>changed</th></tr>")
    for r in runs:
        why = f" ({r['reason']})" if r.get("reason") else ""
        parts.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            r.get("started_at", ""), r.get("ended_at", "-"), r.get("status", "running"), r.get("rows_before", ""),
            r.get("rows_after", "-"), f"{r.get('walk', '')}{why}", r.get("changed", 0))) + "</tr>")
    parts.append("</table>")
    if dropped:
        parts.append(f"<p>{dropped:,} run(s) between the first and the last {len(runs) - 1:,} are not kept.</p>")
    return parts


def render_html(path: str, summary: dict, clusters: list[dict], errors: list[dict], out_dir: str,
                known_links: list[dict] | None = None) -> None:
    """The report page; `known_links`: desktop thumbnails of known material with the files they were made of
    (`vigie.report.scan_report.ThumbnailLinks`), listed as text."""
    c = summary["counts"]
    e = summary["exposure_spared"]
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Vigie scan report</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>Vigie scan report</h1>",
             f"<p>Case <b>{html.escape(str(summary.get('case') or '-'))}</b>, operator "
             f"{html.escape(str(summary.get('operator') or '-'))}, Vigie {html.escape(summary['version'])}, "
             f"{html.escape(str(summary.get('started_at')))} to {html.escape(str(summary.get('finished_at')))}.</p>",
             f"<p class='note'><b>{e['classified_without_viewing']:,}</b> of {e['media_locations']:,} pictures and "
             f"videos ({e['share']:.1%}) were classified from the hash banks: nobody needs to see them. "
             f"Known material is never shown in this report.</p>",
             *_runs(summary),
             "<h2>Files by class</h2>", _bars(c["by_class"], cls=True),
             "<h2>Files by media type</h2>", _bars(c["by_media_type"]),
             "<h2>Known material by category</h2>", _bars(c["by_category"])]
    sealed = thumbs.sealed_count(out_dir)
    total = summary.get("unknown_clusters", len(clusters))
    parts.append(f"<h2>Unknown material: {total:,} group(s) of near-duplicates</h2>"
                 "<p>No picture is shown here. Put the scan in the review queue (<code>vigie scan --queue</code>) "
                 "to look at unknown media under the wellbeing policy."
                 + (f" {sealed:,} blurred grey miniature(s) are sealed with the media key in <code>thumbs/</code>."
                    if sealed else "") + "</p><div class='clusters'>")
    for cl in clusters:  # each: name, count (locations), contents (distinct), flags, its first members
        first = cl["members"][0]
        parts.append(f"<div class='cluster' data-cluster='{cl['name']}'><b>{cl['name']}</b> "
                     f"{cl['count']:,} location(s), {cl['contents']:,} distinct"
                     + (" (video)" if cl.get("video") else "")
                     + (f" <i>{html.escape(', '.join(cl['flags']))}</i>" if cl["flags"] else "")
                     + f"<div class='sha'>{html.escape(first['sha256'])}</div>")
        for m in cl["members"]:
            parts.append(f"<div class='loc'>{html.escape(m['location'])}</div>")
        if cl["count"] > len(cl["members"]):
            parts.append(f"<div class='loc'>… and {cl['count'] - len(cl['members']):,} more (files.csv)</div>")
        parts.append("</div>")
    parts.append("</div>")
    if total > len(clusters):
        parts.append(f"<p>… and {total - len(clusters):,} more group(s): every location's group is in "
                     "<code>files.csv</code> (column <code>cluster</code>).</p>")
    links = summary.get("thumbnail_links") or {}
    if links.get("known"):
        parts.append(f"<h2>Thumbnails of known material: {links['known']:,}</h2><p>Thumbnails (desktop, "
                     "Android Gallery) that match the banks, with the file each was made of: known material was on "
                     "the device at that path, even where the file itself is gone. All thumbnails with their "
                     "originals are in "
                     "<code>thumbnail_links.csv</code>.</p>")
    if links.get("known") and known_links:
        parts.append("<table class='links'><tr><th>original</th><th>thumbnail</th><th>class</th><th>bank</th>"
                     "<th>category</th></tr>")
        for ln in known_links:
            parts.append(f"<tr><td class='loc'>{html.escape(ln['uri'])}</td><td class='loc'>"
                         f"{html.escape(ln['location'])}</td><td>{html.escape(ln['class'])}</td>"
                         f"<td>{html.escape(ln['bank'])}</td><td>{html.escape(ln['category'])}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Errors</h2>")
    if errors:
        parts.append("<table><tr><th>location</th><th>code</th><th>reason</th></tr>")
        for er in errors:
            parts.append(f"<tr><td class='loc'>{html.escape(er['location'])}</td><td>{html.escape(er['code'])}</td>"
                         f"<td>{html.escape(er['message'] or '')}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>none</p>")
    parts.append("</body></html>")
    tmp = path + ".part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(parts))
    os.replace(tmp, path)
