"""A resumed scan's report in a real browser (Debian's Chromium driven by Playwright): the runs and the warning
that the evidence changed between them are on the page, visible, and still no picture."""

from __future__ import annotations

import pytest
from test_evidence_formats import pic
from test_report_browser import CHROMIUM
from test_scan_resume_walk import evidence
from test_scan_runs import _interrupted

from vigie.ingest.scan import run_scan


def test_the_runs_and_the_changed_evidence_are_shown(store, tmp_path):
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (make browser installs it)")
    from playwright.sync_api import sync_playwright

    ev, out = evidence(tmp_path), tmp_path / "out"
    _interrupted(store, ev, out, "browser", "p3.jpg")
    (ev / "pics" / "p1.jpg").write_bytes(pic(99, size=(300, 200)))  # rewritten under its name between the runs
    run_scan(store, store.settings, [str(ev)], str(out), workers=1, case="browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        page = browser.new_page()
        page.goto((out / "report.html").as_uri())
        warn = page.locator(".warn")
        assert warn.count() == 1 and warn.is_visible()
        assert "The evidence changed between the runs" in warn.inner_text()
        rows = page.locator("table.runs tr")
        assert rows.count() == 3  # the header and two runs
        assert [c.strip() for c in rows.nth(1).locator("td").all_inner_texts()][2:] == \
            ["interrupted", "0", rows.nth(2).locator("td").nth(3).inner_text(), "fresh", "0"]
        second = rows.nth(2).locator("td").all_inner_texts()
        assert second[2] == "done" and second[5] == "taken_up" and second[6] == "1"
        assert page.locator("img, picture, video, canvas").count() == 0
        page.screenshot(path=str(out / "report-runs.png"), full_page=True)
        browser.close()
