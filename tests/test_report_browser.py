"""report.html in a real browser (Debian's Chromium driven by Playwright): no picture at all, known or unknown."""

from __future__ import annotations

import shutil

import pytest

from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.hashing import hash_file
from vigie.ingest.scan import run_scan

import factory

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def report(tmp_path, settings):
    from vigie.store import Store

    store = Store.open(settings)
    src = tmp_path / "src"
    src.mkdir()
    known = factory.write(src, "known.jpg", factory.save(factory.picture(40), "JPEG"))
    for i in range(3):
        factory.write(src, f"new{i}.png", factory.save(factory.picture(41 + i), "PNG"))
    rec = hash_file(known, settings)
    banks.create_bank(store, "k")
    banks.import_entries(store, "k", [(1, EntryData("md5", rec.md5))])
    out = tmp_path / "out"
    summary = run_scan(store, settings, [str(src)], str(out), workers=1)
    return out, summary, rec


def test_report_shows_no_picture(report):
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (make browser installs it)")
    from playwright.sync_api import sync_playwright

    out, summary, known = report
    assert summary["counts"]["by_class"]["exact"] == 1 and summary["counts"]["by_class"]["unknown"] == 3
    html = (out / "report.html").read_text()
    assert known.sha256 not in html  # no trace of the known picture's content
    assert not (out / "thumbs").exists() and "data:image" not in html
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        page = browser.new_page()
        page.goto((out / "report.html").as_uri())
        assert page.locator("img, picture, video, canvas").count() == 0
        assert page.locator(".cluster").count() == 3  # the unknown pictures are listed, by hash and location
        page.screenshot(path=str(out / "report.png"), full_page=True)
        browser.close()
