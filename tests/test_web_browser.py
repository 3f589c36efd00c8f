"""The app in a real browser (Debian's Chromium via Playwright) against a real uvicorn server on loopback:
log in as admin, create an analyst and see the one-time password once, log out; an analyst gets 403 on an
admin page. Leaves a screenshot of the dashboard in docs/img/dashboard.png."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vigie import accounts
from vigie.banks import service as banks

from servers import serving
from test_web_kit import benign_pdq

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"



@pytest.fixture
def server(settings):
    from vigie.store import Store
    from vigie.web import create_app

    store = Store.open(settings)
    otp = accounts.ensure_admin(store)
    banks.create_bank(store, "demo-known", description="benign generated pictures")
    for seed in range(3):
        banks.add_entry(store, "demo-known", "pdq", benign_pdq(seed, settings))
    banks.create_bank(store, "false-positives", kind="suppression")
    with serving(create_app(store, settings)) as base:
        yield base, otp, store
    store.close()


def login(page, base, username, password):
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def choose_password(page, base, current, new):
    """What a one-time password allows, and all it allows: choosing one's own on /account."""
    page.fill("form[action='/account/password'] input[name=current]", current)
    page.fill("form[action='/account/password'] input[name=new]", new)
    page.fill("form[action='/account/password'] input[name=confirm]", new)
    page.click("form[action='/account/password'] button[type=submit]")
    page.wait_for_load_state()


def test_admin_creates_analyst_who_cannot_reach_admin_pages(server):
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    base, admin_otp, store = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1200, "height": 720})
        page = ctx.new_page()
        login(page, base, "admin", admin_otp)
        page.wait_for_url(f"{base}/account")  # a one-time password: asked to choose one
        cookie = next(c for c in ctx.cookies() if c["name"] == "vigie_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.goto(f"{base}/users").status == 403  # nothing else until a password of one's own is chosen
        page.goto(f"{base}/account")
        choose_password(page, base, admin_otp, "Admin-chose-this-9qT4")
        page.goto(f"{base}/users")
        page.fill("input[name=username]", "ann")
        page.select_option("select[name=role]", "analyst")
        page.click("form[action='/users'] button[type=submit]")
        otp = page.locator("#one-time-password").inner_text(timeout=5000).strip()
        assert len(otp) >= 20
        page.goto(f"{base}/users")
        assert page.locator("tr[data-user=ann]").count() == 1
        assert otp not in page.content()  # shown once, never again
        page.goto(f"{base}/")
        assert page.locator(".tile .n").first.inner_text() == "2"
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / "dashboard.png"))
        page.click("header button:has-text('Log out')")
        page.wait_for_url(f"{base}/login")
        assert page.goto(f"{base}/users").url.startswith(f"{base}/login?next=")

        login(page, base, "ann", otp)
        page.wait_for_url(f"{base}/account")
        choose_password(page, base, otp, "Ann-chose-this-7wR2x")
        resp = page.goto(f"{base}/users")
        assert resp.status == 403 and "Not allowed" in page.content()
        resp = page.goto(f"{base}/banks")
        assert resp.status == 200 and "demo-known" in page.content()
        browser.close()
    acts = [r["action"] for r in _audit(store)]
    assert acts.count("login.ok") == 2 and "user.create" in acts and "logout" in acts


def _audit(store):
    import io
    import json

    from vigie import audit

    buf = io.StringIO()
    audit.export(store, buf)
    return [json.loads(x) for x in buf.getvalue().splitlines()]
