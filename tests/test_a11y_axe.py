"""axe-core in a real browser (Debian's Chromium via Playwright) on the pages people work in: every review page,
the dashboard, the login page and the public report form, for an analyst and a supervisor, at 1280 and 390 px,
and the review pages while locked and warned. No violation of impact serious or critical is allowed.

axe-core comes from npm into .cache/axe/axe.min.js (`make browser` fetches it; the folder is ignored by git) and
is injected from that local file: the page under test loads nothing from elsewhere. Without the file the test is
skipped with the reason, never failed. Generated, benign pictures only."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_ui_kit import login, review_app, review_pages

from test_web_browser import CHROMIUM
from test_web_kit import Clock

AXE = Path(__file__).resolve().parents[1] / ".cache" / "axe" / "axe.min.js"
pytestmark = [pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is not installed"),
              pytest.mark.skipif(not AXE.is_file(), reason=f"axe-core is not in {AXE}: `make browser` fetches it "
                                                           "from npm (npm pack axe-core)")]
WIDTHS = {1280: 800, 390: 844}
COLOUR_SHOWN = """() => { const i = document.getElementById('stage');  // the server has served (and counted) it
  return (i.getAttribute('src') || '').endsWith('colour') && i.complete && i.naturalWidth > 0; }"""
BAD = ("serious", "critical")

RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ["violations"]});
  return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                   nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" "))}));
}"""


def violations(page) -> list[dict]:
    page.wait_for_load_state("networkidle")
    page.add_script_tag(path=str(AXE))
    return [v for v in page.evaluate(RUN) if v["impact"] in BAD]


def new_page(browser, width: int):
    # the app's Content-Security-Policy forbids inline scripts: only the test's own injection is let through
    return browser.new_context(viewport={"width": width, "height": WIDTHS[width]}, bypass_csp=True).new_page()


def test_no_serious_violation_on_any_page_for_either_role(settings, monkeypatch, browser):
    from vigie.review import decisions, queue

    with review_app(settings, monkeypatch) as (base, store, cid):
        other = next(c["id"] for c in queue.list_queue(store) if c["id"] != cid)
        decisions.decide(store, settings, other, "ana", "illegal_national", "clear")
        decisions.decide(store, settings, other, "bob", "not_illegal", "adult")
        found: dict[str, list] = {}
        for width in WIDTHS:
            page = new_page(browser, width)
            for name, path in (("login", "/login"), ("report_form", "/report")):
                assert page.goto(f"{base}{path}").status == 200, path
                found[f"{name} {width}"] = violations(page)
            for user, role in (("ana", "analyst"), ("sue", "supervisor")):
                page = new_page(browser, width)
                login(page, base, user)
                for name, path in review_pages(role, cid, other).items():
                    assert page.goto(f"{base}{path}").status == 200, path
                    found[f"{name} {role} {width}"] = violations(page)
                if role == "supervisor":  # the confirmation of a resolution, then the decided page
                    page.goto(f"{base}/review/disputed")
                    page.check(f"[data-cluster='{other}'] input[value=not_illegal]")
                    page.fill(f"[data-cluster='{other}'] input[name=note]", "adult, clear")
                    page.click(f"[data-cluster='{other}'] button[type=submit]")
                    page.wait_for_selector("#votes")
                    found[f"resolve {role} {width}"] = violations(page)
                else:  # the confirmation dialog and the help overlay of the cluster page, open
                    page.goto(f"{base}/review/clusters/{cid}")
                    page.keyboard.press("?")
                    page.wait_for_selector("#help[open]")
                    found[f"help {role} {width}"] = violations(page)
        bad = {k: v for k, v in found.items() if v}
        assert len(found) == 2 * (2 + 6 + 9)
        assert not bad, bad


def test_no_serious_violation_while_warned_and_locked(settings, monkeypatch, browser):
    clock = Clock()
    with review_app(settings, monkeypatch, clock=clock) as (base, store, cid):
        from vigie.review import wellbeing

        wellbeing.set_team_policy(store, {"daily_limit_min": 10, "warning_min": 5}, "sue")
        page = new_page(browser, 1280)
        login(page, base, "ana")
        page.goto(f"{base}/review/clusters/{cid}")
        page.keyboard.press("1")
        page.wait_for_function(COLOUR_SHOWN)
        for _ in range(8):  # revealed time passes, with the page's heartbeat: 2 minutes left
            clock.advance(minutes=1)
            page.evaluate("window.vigieReview.heartbeat()")
        page.wait_for_selector("#exposure .banner.warning")
        found = {"cluster warned": violations(page)}
        for _ in range(3):
            clock.advance(minutes=1)
            page.evaluate("window.vigieReview.heartbeat()")
        page.wait_for_selector("#exposure .banner.locked")
        found["cluster locked, in place"] = violations(page)
        for path in ("/review", f"/review/clusters/{cid}"):
            page.goto(f"{base}{path}")
            found[f"{path} locked"] = violations(page)
        assert not {k: v for k, v in found.items() if v}, found
