"""Connection pooling of the crawler: a connection opened for one site (TLS name, Host) is never reused for
another site on the same address, and one site's requests still share their connections.

A small HTTPS server on 127.0.0.1 with a self-signed certificate made here (`cryptography`) answers every
request with the TLS name (SNI) its connection was opened with, the request's Host header and the
connection's number. Two test names resolve to 127.0.0.1 through the fetcher's resolver (no lookup)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
from contextlib import contextmanager

import pytest

from vigie.ingest.fetch import Fetcher, Pools
from vigie.settings import Settings

NAMES = ("site-a.test", "site-b.test")


def _certificate(names) -> tuple[bytes, bytes]:
    """A self-signed certificate for `names` and its key, PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _serve_connection(conn: ssl.SSLSocket, number: int, names: dict) -> None:
    sni = names.get(id(conn), "")
    buf = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in buf:
                try:
                    got = conn.recv(65536)
                except OSError:
                    return
                if not got:
                    return
                buf += got
            head, buf = buf.split(b"\r\n\r\n", 1)
            host = ""
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"host":
                    host = v.strip().decode()
            body = f"{sni}|{host}|{number}".encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))


@contextmanager
def tls_server(cert_pem: bytes, key_pem: bytes, tmp_path):
    """An HTTPS server on 127.0.0.1 (keep-alive): yields its port."""
    (tmp_path / "c.pem").write_bytes(cert_pem)
    (tmp_path / "k.pem").write_bytes(key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    names: dict[int, str] = {}

    def remember(sock, server_name, _ctx):
        names[id(sock)] = server_name or ""

    ctx.sni_callback = remember
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.settimeout(0.2)
    stop = threading.Event()

    def accept():
        n = 0
        while not stop.is_set():
            try:
                raw, _ = lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            n += 1
            try:
                conn = ctx.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()
                continue
            threading.Thread(target=_serve_connection, args=(conn, n, names), daemon=True).start()

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        yield lsock.getsockname()[1]
    finally:
        stop.set()
        th.join(5)
        lsock.close()


def _resolve_to_loopback(fetcher: Fetcher) -> None:
    real = fetcher.policy.resolve

    async def resolve(host, port):
        return await real("127.0.0.1" if host in NAMES else host, port)

    fetcher.policy.resolve = resolve


def _site_setup(tmp_path, concurrency: int):
    """The two test sites' certificate and key, a client context trusting it, and settings that let the
    fetcher reach 127.0.0.1 with `concurrency` requests at once, no delay and no retry."""
    cert, key = _certificate(NAMES)
    client_ctx = ssl.create_default_context(cadata=cert.decode())
    st = Settings(data_dir=tmp_path, crawl_allowed_networks=["127.0.0.1/32"], crawl_per_host_delay=0.0,
                  crawl_per_host_concurrency=concurrency, crawl_concurrency=concurrency, crawl_retries=0)
    return cert, key, client_ctx, st


def test_a_connection_opened_for_one_site_is_never_reused_for_another_on_the_same_address(tmp_path):
    cert, key, client_ctx, st = _site_setup(tmp_path, 1)
    with tls_server(cert, key, tmp_path) as port:
        async def go():
            async with Fetcher(st, verify=client_ctx) as f:
                _resolve_to_loopback(f)
                out = []
                for name in NAMES + NAMES + NAMES:  # a, b, a, b, a, b on one address and port, one at a time
                    got = await f.fetch(f"https://{name}:{port}/x", 10_000)
                    assert got.ip == "127.0.0.1"
                    out.append((name, *got.data.decode().split("|")))
                pools = list(f.client._transport.pools)
                return out, pools

        out, pools = asyncio.run(go())
    for name, sni, host, _conn in out:
        assert sni == name and host == f"{name}:{port}"  # every request went over its own site's TLS session
    conns = {name: {c for n, _, _, c in out if n == name} for name in NAMES}
    assert len(conns[NAMES[0]]) == 1 and len(conns[NAMES[1]]) == 1  # each site kept its connection
    assert conns[NAMES[0]] != conns[NAMES[1]]
    assert sorted(k[3] for k in pools) == sorted(NAMES) and {k[1] for k in pools} == {"127.0.0.1"}


def test_pools_are_keyed_by_scheme_address_port_and_host_name():
    def req(url, sni=None, host=None):
        r = __import__("httpx").Request("GET", url, headers={"Host": host} if host else None,
                                        extensions={"sni_hostname": sni} if sni else None)
        return Pools.key(r)

    a = req("https://127.0.0.1:8443/", "a.test", "a.test:8443")
    assert a == req("https://127.0.0.1:8443/other", "A.TEST", "a.test:8443")  # one site: one pool
    assert a != req("https://127.0.0.1:8443/", "b.test", "b.test:8443")  # another name: another pool
    assert a != req("https://127.0.0.2:8443/", "a.test", "a.test:8443")  # another address
    assert a != req("https://127.0.0.1:9443/", "a.test", "a.test:9443")  # another port
    assert req("http://127.0.0.1:80/", "a.test", "a.test") != req("http://127.0.0.1:80/", "b.test", "b.test")


@pytest.mark.parametrize("n", [3])
def test_idle_pools_are_closed_past_the_limit(tmp_path, monkeypatch, n):
    """Many sites on one address: pools past MAX_POOLS with nothing in flight are closed, the others kept."""
    import vigie.ingest.fetch as fetch_mod

    monkeypatch.setattr(fetch_mod, "MAX_POOLS", n)
    cert, key = _certificate(NAMES + ("site-c.test", "site-d.test", "site-e.test"))
    client_ctx = ssl.create_default_context(cadata=cert.decode())
    st = Settings(data_dir=tmp_path, crawl_allowed_networks=["127.0.0.1/32"], crawl_per_host_delay=0.0)
    names = NAMES + ("site-c.test", "site-d.test", "site-e.test")
    with tls_server(cert, key, tmp_path) as port:
        async def go():
            async with Fetcher(st, verify=client_ctx) as f:
                real = f.policy.resolve

                async def resolve(host, p):
                    return await real("127.0.0.1" if host in names else host, p)

                f.policy.resolve = resolve
                for name in names:
                    got = await f.fetch(f"https://{name}:{port}/x", 10_000)
                    assert got.data.decode().split("|")[0] == name
                return len(f.client._transport.pools)

        assert asyncio.run(go()) <= n


def test_requests_sent_together_each_get_a_connection_at_the_first_try(tmp_path, monkeypatch):
    """A host's requests go out together (its turns at once): each is handed its own connection, never one
    already handed to another (httpcore 1.0's own pool did, and all but one request then failed with
    ConnectionNotAvailable and asked again); the connections are kept from one burst to the next."""
    import httpcore
    from httpcore._async.connection import AsyncHTTPConnection

    refused = []
    real = AsyncHTTPConnection.handle_async_request

    async def counted(self, request):
        try:
            return await real(self, request)
        except httpcore.ConnectionNotAvailable:
            refused.append(request.url)
            raise

    monkeypatch.setattr(AsyncHTTPConnection, "handle_async_request", counted)
    cert, key, client_ctx, st = _site_setup(tmp_path, 4)
    with tls_server(cert, key, tmp_path) as port:
        async def go():
            async with Fetcher(st, verify=client_ctx) as f:
                _resolve_to_loopback(f)
                conns = set()
                for burst in range(4):
                    got = await asyncio.gather(*(f.fetch(f"https://{NAMES[0]}:{port}/{burst}/{i}", 10_000)
                                                 for i in range(4)))
                    for g in got:
                        sni, host, conn = g.data.decode().split("|")
                        assert sni == NAMES[0] and host == f"{NAMES[0]}:{port}"
                        conns.add(conn)
                return conns

        conns = asyncio.run(go())
    assert refused == []
    assert 1 <= len(conns) <= 4  # at most the host's concurrency, kept across the bursts
