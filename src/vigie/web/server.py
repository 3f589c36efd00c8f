"""`serve()`: open the store, make the first admin if there is none, run uvicorn. What `vigie serve` calls."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from vigie.settings import Settings


class ReporterPrivacy:
    """A logging filter for uvicorn's access log: requests to the public report pages and API are logged
    without the client's address, so the reporter's IP address is not stored by Vigie, logs included.
    (A proxy in front keeps its own logs: see docs/intake.md.)"""

    PATHS = ("/report", "/api/v1/reports")

    def filter(self, record) -> bool:
        args = getattr(record, "args", None)
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) \
                and args[2].split("?", 1)[0].startswith(self.PATHS):
            record.args = ("-", *args[1:])
        return True


def quiet_reporters() -> None:
    import logging

    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, ReporterPrivacy) for f in logger.filters):
        logger.addFilter(ReporterPrivacy())


def first_start_banner(password: str) -> str:
    return ("\n  Vigie first start: the account 'admin' was created with this one-time password:\n\n"
            f"      {password}\n\n"
            "  It is shown this once and must be changed at the first login.\n\n")


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, *, stream: TextIO | None = None,
          **uvicorn_options) -> None:
    """Serve until interrupted. Listens on loopback by default: put a TLS proxy in front for other machines
    (and set VIGIE_COOKIE_SECURE=true). `uvicorn_options` go to `uvicorn.run` (e.g. proxy_headers=True)."""
    import uvicorn

    from vigie import accounts
    from vigie.store.db import Store
    from vigie.web.app import create_app

    store = Store.open(settings)
    quiet_reporters()
    password = accounts.ensure_admin(store)
    if password:
        (stream or sys.stderr).write(first_start_banner(password))
        (stream or sys.stderr).flush()
    workers = int(uvicorn_options.pop("workers", 1) or 1)
    intake = bool(uvicorn_options.pop("intake_worker", True))
    if workers > 1:  # several processes: each builds its app from the environment (make_app)
        from vigie.ratelimit import shared_secret

        shared_secret(settings)  # one key for the address hashes of every worker (in their environment only)
        os.environ["VIGIE_DATA_DIR"] = str(settings.data_dir)
        if settings.database_url:
            os.environ["VIGIE_DATABASE_URL"] = settings.database_url
        stop = _start_housekeeping(store, settings, intake=intake)
        try:
            uvicorn.run("vigie.web.server:make_app", factory=True, host=host, port=port, workers=workers,
                        log_level=uvicorn_options.pop("log_level", "info"), server_header=False, **uvicorn_options)
        finally:
            stop.set()
            store.close()
        return
    app = create_app(store, settings)
    stop = _start_housekeeping(store, settings, intake=intake)
    try:
        uvicorn.run(app, host=host, port=port, log_level=uvicorn_options.pop("log_level", "info"),
                    server_header=False, **uvicorn_options)
    finally:
        stop.set()
        store.close()


def _start_housekeeping(store, settings, every_s: float = 3600.0, *, intake: bool = True):
    """The app's own workers: purge review media past their retention (hourly), pull partners' shared banks
    and the hash exchanges (every `sharing_sync_minutes`), and the intake worker (crawl reported URLs,
    re-check known material, send takedown notices; every `crawl_interval_seconds`), in a child process.

    A failure is logged, never fatal: the next round tries again. Setting the returned event stops all."""
    import logging
    import threading

    from vigie.review.clock import SystemClock
    from vigie.review.media import purge_decided

    stop = threading.Event()

    sync_every = max(60.0, 60.0 * float(getattr(settings, "sharing_sync_minutes", 60)))
    last_sync = float("-inf")

    def loop() -> None:
        nonlocal last_sync
        import time

        from vigie import repair

        try:  # finish what a crash left half-done before anything else (see vigie.repair)
            repair.run(store, settings)
        except Exception:  # noqa: BLE001
            logging.getLogger("vigie").exception("repair at start failed")
        while not stop.is_set():
            try:
                purge_decided(store, settings, SystemClock())
            except Exception:  # noqa: BLE001
                logging.getLogger("vigie").exception("purge of review media failed")
            if time.monotonic() - last_sync >= sync_every:
                last_sync = time.monotonic()
                try:
                    from vigie.sharing.subscriber import sync_all

                    sync_all(store, settings)  # every outcome is audited and kept on the subscription
                except Exception:  # noqa: BLE001
                    logging.getLogger("vigie").exception("sync of subscriptions failed")
            stop.wait(min(every_s, sync_every))

    threading.Thread(target=loop, name="vigie-housekeeping", daemon=True).start()

    def exchanges_loop() -> None:
        """Hash exchanges (NCMEC, StopNCII, ...) on the same rhythm as partners' banks, in a thread of their own:
        a slow exchange (its fetch may take up to an hour) never holds up the purge of review media."""
        from vigie.sharing import exchanges

        while not stop.wait(5.0):
            try:
                if exchanges.list_exchanges(store):
                    exchanges.fetch_all(store)  # each outcome is kept on its subscription
            except Exception:  # noqa: BLE001
                logging.getLogger("vigie").exception("fetch of hash exchanges failed")
            if stop.wait(sync_every):
                return

    threading.Thread(target=exchanges_loop, name="vigie-exchanges", daemon=True).start()
    if intake:
        from vigie.ingest.worker import start_worker

        intake_stop = start_worker(settings)

        def relay() -> None:
            stop.wait()
            intake_stop.set()

        threading.Thread(target=relay, name="vigie-stop-relay", daemon=True).start()
    return stop


def make_app():
    """App factory for several server processes (`uvicorn vigie.web.server:make_app --factory --workers N`):
    each process opens the store from the VIGIE_* environment and maps the saved index."""
    from vigie.settings import Settings
    from vigie.store.db import Store
    from vigie.web.app import create_app

    settings = Settings()
    quiet_reporters()
    return create_app(Store.open(settings), settings)
