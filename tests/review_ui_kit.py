"""Shared pieces of the review UI browser tests: a queue with a 9-item cluster of near copies (generated, benign
pictures only), a served app on loopback, logins, and counters of the pointer clicks and key presses a person
makes (so the notes can say how many it takes to decide a cluster)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import ImageEnhance

from vigie import accounts
from vigie.demo import encode, photo_like
from vigie.review import queue

from servers import serving
from test_web_kit import PASSWORD, fast_hashing

NINE_SEED = 710
OTHER_SEEDS = (711, 712)


def near_copies(seed: int, n: int = 9) -> list[bytes]:
    """`n` different files of one generated picture (brightness and size change a little): one PDQ cluster."""
    base = photo_like(seed, 480, 360)
    out = []
    for i in range(n):
        img = ImageEnhance.Brightness(base).enhance(1.0 + 0.02 * i).resize((480 - 4 * i, 360 - 3 * i))
        out.append(encode(img, "JPEG", quality=85 + i))
    return out


def fill_queue(store, settings) -> int:
    """Queue nine near copies (one cluster) and two other pictures from reports; return the big cluster's id."""
    cids = {queue.enqueue_media(store, settings, data, source="report", ref={"report": "R-1"},
                                location=f"report-1/copy{i}.jpg")["cluster"]
            for i, data in enumerate(near_copies(NINE_SEED))}
    assert len(cids) == 1, cids
    for s in OTHER_SEEDS:
        queue.enqueue_media(store, settings, encode(photo_like(s, 400, 300), "JPEG"), source="report",
                            ref={"report": "R-2"}, location=f"report-2/{s}.jpg")
    return cids.pop()


@contextmanager
def review_app(settings, monkeypatch, users=(("ana", "analyst"), ("bob", "analyst"), ("sue", "supervisor")),
               clock=None) -> Iterator[tuple[str, object, int]]:
    """(base URL, store, id of the 9-item cluster) of a served app with the given accounts."""
    from vigie.store import Store
    from vigie.web import create_app

    monkeypatch.setenv("VIGIE_MEDIA_KEY", base64.b64encode(os.urandom(32)).decode())
    fast_hashing(monkeypatch)
    store = Store.open(settings)
    for name, role in users:
        accounts.create_user(store, name, role, PASSWORD)
    cid = fill_queue(store, settings)
    try:
        with serving(create_app(store, settings, clock=clock)) as base:
            yield base, store, cid
    finally:
        store.close()


def login(page, base: str, username: str) -> None:
    page.goto(f"{base}/login?next=/review")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/review")


class Counter:
    """Pointer clicks and key presses, counted as a person would make them."""

    def __init__(self, page):
        self.page, self.clicks, self.keys = page, 0, 0

    def click(self, selector: str) -> None:
        self.page.click(selector)
        self.clicks += 1

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.keys += 1

    def tab_to(self, js_test: str, limit: int = 400) -> None:
        """Press Tab until `js_test` (a JS expression on `el`, the focused element) holds."""
        for _ in range(limit):
            self.press("Tab")
            if self.page.evaluate(f"(() => {{ const el = document.activeElement; return !!({js_test}); }})()"):
                return
        raise AssertionError(f"never reached {js_test}")


def review_pages(role: str, cid: int, disputed: int) -> dict[str, str]:
    """The pages a person of `role` works in, by name (screenshots and the accessibility run)."""
    out = {"dashboard": "/", "queue": "/review", "cluster": f"/review/clusters/{cid}", "upload": "/review/upload",
           "policy": "/review/policy"}
    if role == "supervisor":
        out |= {"disputed": "/review/disputed", "exposure": "/review/exposure",
                "disputed_cluster": f"/review/clusters/{disputed}"}
    return out

