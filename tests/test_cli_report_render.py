"""`vigie report submit --render` and `vigie report render`: staff ask the crawler to open a report's pages in its
browser (no network here: only the plan in the store is checked)."""

from __future__ import annotations

import json

from sqlalchemy import select

from vigie.settings import Settings
from vigie.store import Store
from vigie.store.crawl_models import CrawlPlan

from test_cli_hash import vigie


def _plans(data):
    store = Store.open(Settings(data_dir=data, workers=1))
    try:
        with store.sessions() as s:
            return {p.url_id: p.render for p in s.scalars(select(CrawlPlan))}
    finally:
        store.close()


def test_staff_ask_for_rendering_and_take_it_back(tmp_path):
    data = tmp_path / "data"
    r = vigie("report", "submit", "http://example.com/spa", "http://example.com/b", "--render", "--json",
              "--data-dir", str(data))
    got = json.loads(r.stdout)
    assert r.returncode == 0 and got["render"] == 2
    assert sorted(_plans(data).values()) == [True, True]
    r = vigie("report", "render", got["reference"], "--off", "--json", "--data-dir", str(data))
    assert r.returncode == 0 and json.loads(r.stdout)["render"] is False
    assert sorted(_plans(data).values()) == [False, False]
    r = vigie("report", "render", "VR-0000-0000-0000", "--json", "--data-dir", str(data))
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == "report_not_found"
