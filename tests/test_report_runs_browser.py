"""A resumed scan's report in a real browser (Debian's Chromium driven by Playwright): the runs and the warning
that the evidence changed between them are on the page, visible, and still no picture."""

from __future__ import annotations

from test_evidence_formats import pic
from test_scan_resume_walk import evidence
from test_scan_runs import _interrupted

from vigie.ingest.scan import run_scan


def test_the_runs_and_the_changed_evidence_are_shown(store, tmp_path, browser):
    ev, out = evidence(tmp_path), tmp_path / "out"
    _interrupted(store, ev, out, "browser", "p3.jpg")
    (ev / "pics" / "p1.jpg").write_bytes(pic(99, size=(300, 200)))  # rewritten under its name between the runs
    run_scan(store, store.settings, [str(ev)], str(out), workers=1, case="browser")
    page = browser.new_page()
    page.goto((out / "report.html").as_uri())
    warn = page.locator(".warn")
    assert warn.count() == 1 and warn.is_visible()
    assert "The evidence changed between the runs" in warn.inner_text()
    rows = page.locator("table.runs tr")
    assert rows.count() == 3  # the header and two runs
    first = [c.strip() for c in rows.nth(1).locator("td").all_inner_texts()]
    second = [c.strip() for c in rows.nth(2).locator("td").all_inner_texts()]
    assert first[2:4] == ["interrupted", "0"] and first[5:] == ["fresh", "0"] and first[4] == second[3]
    assert second[2] == "done" and second[5] == "taken_up" and second[6] == "1"
    assert page.locator("img, picture, video, canvas").count() == 0
    page.screenshot(path=str(out / "report-runs.png"), full_page=True)
