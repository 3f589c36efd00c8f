"""Every body is bounded: 413 `too_large` on a declared Content-Length over the route's limit before reading,
and on a chunked body as soon as it passes; uploads held in memory (never spooled to a temporary file); the
pixel limit read from the header on /match/image. A real server process receiving 200 MiB bodies and pixel
bombs keeps its memory bounded."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest
from fastapi.testclient import TestClient

from vigie import accounts

from servers import free_port
from test_web_kit import make_kit, session_client

MIB = 2**20


@pytest.fixture
def kit(store, monkeypatch):
    return make_kit(store, monkeypatch)


def assert_413(r) -> None:
    assert r.status_code == 413, r.text[:200]
    assert r.json()["error"]["code"] == "too_large"
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"


def chunks(total: int, size: int = 64 * 1024):
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b" " * n


def test_declared_and_chunked_bodies_over_the_limit_are_413(kit):
    app, clock, store = kit
    c = TestClient(app)
    big = b'{"username": "' + b"a" * (2 * MIB) + b'", "password": "x"}'
    assert_413(c.post("/api/v1/login", content=big, headers={"content-type": "application/json"}))
    assert_413(c.post("/api/v1/reports", content=chunks(3 * MIB), headers={"content-type": "application/json"}))
    # forms have their own, smaller limit
    r = c.post("/login", content=chunks(300 * 1024), headers={"content-type": "application/x-www-form-urlencoded"})
    assert_413(r)
    an, csrf = session_client(app, store, "analyst", clock)
    r = an.post("/api/v1/match", content=chunks(2 * MIB),
                headers={"content-type": "application/json", "X-CSRF-Token": csrf})
    assert_413(r)
    # within the limits, all is as before
    assert c.post("/api/v1/login", json={"username": "analyst", "password": "nope"}).status_code == 401
    assert an.get("/api/v1/me").status_code == 200


def test_an_upload_stays_in_memory_within_its_limit(kit, monkeypatch):
    """A 3 MiB picture (Starlette would spool anything over 1 MiB to /tmp) is hashed without a temporary file."""
    from vigie.demo import encode, photo_like
    from vigie.hashing import hash_bytes

    app, clock, store = kit
    hash_bytes(encode(photo_like(4), "PNG"), store.settings)  # imports done (numba probes its cache folder)
    made = []
    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        real = getattr(tempfile, name)
        monkeypatch.setattr(tempfile, name, lambda *a, _real=real, _n=name, **k: made.append(_n) or _real(*a, **k))
    real_rollover = tempfile.SpooledTemporaryFile.rollover
    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover",
                        lambda self: made.append("rollover") or real_rollover(self))
    _k, secret = accounts.create_api_key(store, "partner", ["match"], "admin")
    auth = {"Authorization": f"Bearer {secret}"}
    noise = os.urandom(3 * MIB)  # benign: a small generated picture followed by random bytes
    pic = encode(photo_like(5), "PNG") + noise
    c = TestClient(app)
    r = c.post("/api/v1/match/image", files={"file": ("x.png", pic, "image/png")}, headers=auth)
    assert r.status_code == 200, r.text
    assert made == []
    store.settings.max_upload_bytes = 2 * MIB  # the limit is read per request
    assert_413(c.post("/api/v1/match/image", files={"file": ("x.png", pic, "image/png")}, headers=auth))


def pixel_bomb(w: int = 9900, h: int = 9900) -> bytes:
    """A blank 98-megapixel PNG of a few hundred KB (benign: one flat colour)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (w, h), 1).save(buf, "PNG")
    return buf.getvalue()


def test_the_pixel_limit_is_read_before_decoding(kit, monkeypatch):
    app, clock, store = kit
    import vigie.media.decode as decode

    decoded = []
    real = decode.decode_image
    monkeypatch.setattr(decode, "decode_image", lambda *a, **k: decoded.append(1) or real(*a, **k))
    _k, secret = accounts.create_api_key(store, "partner", ["match"], "admin")
    bomb = pixel_bomb()
    assert len(bomb) < 2 * MIB
    r = TestClient(app).post("/api/v1/match/image", files={"file": ("b.png", bomb, "image/png")},
                             headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_large", r.text


# ---- a real server process ---------------------------------------------------------------------------------

SERVER = textwrap.dedent("""
    import json, sys
    import uvicorn
    from vigie import accounts
    from vigie.settings import Settings
    from vigie.store import Store
    from vigie.web import create_app
    settings = Settings(data_dir=sys.argv[1], workers=1, max_upload_bytes=8 * 2**20)
    store = Store.open(settings)
    _k, secret = accounts.create_api_key(store, "partner", ["match"], "admin")
    open(sys.argv[3], "w").write(secret)
    uvicorn.run(create_app(store, settings), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
""")


def peak_rss_mib(pid: int) -> tuple[float, float]:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def send_big(port: int, path: str, total: int, *, chunked: bool, headers: dict | None = None,
             content_type: str = "application/json", prefix: bytes = b"") -> int:
    """Stream `total` bytes to the server; stop when it closes. Returns the HTTP status it answered."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    piece = b"7" * MIB
    sent = 0
    try:
        if prefix:
            s.sendall((b"%x\r\n" % len(prefix)) + prefix + b"\r\n" if chunked else prefix)
        while sent < total:
            s.sendall((b"%x\r\n" % len(piece)) + piece + b"\r\n" if chunked else piece)
            sent += len(piece)
        if chunked:
            s.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    data = b""
    try:
        while b"\r\n" not in data:
            got = s.recv(4096)
            if not got:
                break
            data += got
    except (ConnectionResetError, TimeoutError):
        pass
    s.close()
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1") else 0


def multipart(payload: bytes, boundary: str = "vigieboundary") -> tuple[bytes, str]:
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_server_memory_stays_bounded_under_oversized_bodies_and_pixel_bombs(tmp_path):
    import httpx

    port = free_port()
    keyfile = tmp_path / "key"
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path / "data"), str(port), str(keyfile)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        secret = keyfile.read_text()
        auth = {"Authorization": f"Bearer {secret}"}
        bomb_body, bomb_type = multipart(pixel_bomb())
        # warm up: every route once with a small body, so that imports and caches are in the baseline
        httpx.post(f"http://127.0.0.1:{port}/api/v1/login", json={"username": "x", "password": "y"})
        small, small_type = multipart(b"not a picture")
        httpx.post(f"http://127.0.0.1:{port}/api/v1/match/image", content=small, headers={**auth,
                   "content-type": small_type})
        _rss, base = peak_rss_mib(proc.pid)
        statuses = [
            send_big(port, "/api/v1/login", 200 * MIB, chunked=False),
            send_big(port, "/api/v1/login", 200 * MIB, chunked=True),
            send_big(port, "/api/v1/reports", 200 * MIB, chunked=True),
            send_big(port, "/report", 200 * MIB, chunked=True, content_type="application/x-www-form-urlencoded"),
            send_big(port, "/api/v1/match/image", 200 * MIB, chunked=True, headers=auth,
                     content_type="multipart/form-data; boundary=x",
                     prefix=b'--x\r\nContent-Disposition: form-data; name="file"; filename="b.png"\r\n\r\n'),
        ]
        bombs = [httpx.post(f"http://127.0.0.1:{port}/api/v1/match/image", content=bomb_body,
                            headers={**auth, "content-type": bomb_type}, timeout=60) for _ in range(3)]
        _rss, peak = peak_rss_mib(proc.pid)
        assert statuses == [413] * 5
        assert [b.status_code for b in bombs] == [422] * 3 and bombs[0].json()["error"]["code"] == "too_large"
        grew = peak - base
        print(f"\nserver peak RSS {base:.0f} MiB before, {peak:.0f} MiB after 5 x 200 MiB bodies and 3 pixel "
              f"bombs (+{grew:.0f} MiB)")
        assert grew < 64, f"the server grew by {grew:.0f} MiB"
        assert list((tmp_path / "tmp").iterdir()) == []  # nothing spooled to the temporary folder
        assert json.loads(httpx.get(f"http://127.0.0.1:{port}/healthz").text) == {"ok": True}
    finally:
        proc.terminate()
        proc.wait(10)
