"""Real servers on loopback for tests where the network is the point: HTTP (browser, sharing, crawler)
and SMTP (takedown notices)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Run `app` with uvicorn in a thread on `host` (a loopback address: 127.0.0.1 unless told, 127.0.0.2 for
    a second host of the crawler's tests) and yield its base URL; stopped on exit."""
    import uvicorn

    assert host.startswith("127."), "test servers listen on loopback only"
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                        timeout_graceful_shutdown=1))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://{host}:{port}"
    finally:
        srv.should_exit = True
        th.join(5)


class Inbox:
    """An aiosmtpd handler that keeps every message and refuses the recipients it is told to."""

    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 Message accepted"

    def parsed(self):
        return [(to, message_from_bytes(raw, policy=policy.default)) for to, raw in self.messages]


@contextmanager
def mail_server() -> Iterator[tuple[Inbox, int]]:
    """An SMTP server (aiosmtpd) on 127.0.0.1: yields its inbox and port; stopped on exit."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield inbox, port
    finally:
        ctl.stop()


@contextmanager
def counting_listener(host: str = "127.0.0.1") -> Iterator[tuple[int, list]]:
    """A bare TCP listener on loopback that only counts (and closes) the connections it gets: for tests that
    assert nothing reached a port. Yields (port, list of accepted peer addresses)."""
    assert host.startswith("127."), "test servers listen on loopback only"
    srv = socket.socket()
    srv.bind((host, 0))
    srv.listen(16)
    srv.settimeout(0.1)
    got: list = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, peer = srv.accept()
            except (TimeoutError, OSError):
                continue
            got.append(peer)
            conn.close()

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    try:
        yield srv.getsockname()[1], got
    finally:
        stop.set()
        th.join(2)
        srv.close()
