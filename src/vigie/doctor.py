"""`vigie doctor`: check a deployment and say what is wrong in plain words.

Each check is a small function returning (status, message): ok, warn or fail. It never
changes anything (it does not migrate, create keys or write files).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from vigie.settings import Settings


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    message: str

    def as_dict(self) -> dict:
        return {"check": self.name, "status": self.status, "message": self.message}


def _database(settings: Settings) -> list[Check]:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from vigie.store.db import MIGRATIONS

    url = settings.effective_database_url
    shown = url.split("@")[-1] if "@" in url else url
    if url.startswith("sqlite") and not (settings.data_dir / "vigie.db").exists():
        return [Check("database", "warn", f"no store yet at {shown}: the first command creates it")]
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 5} if url.startswith("postgresql") else {})
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
            triggers = _revision_triggers(conn)
            scans = _scans(conn, settings)
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        return [Check("database", "fail", f"cannot connect to {shown}: {exc}")]
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    heads = set(script.get_heads())
    # applied: the recorded heads and all below them, dependencies included (a branch that another revision
    # depends on is not listed in alembic_version once that revision is applied)
    applied = {r.revision for r in script.revision_map.iterate_revisions(tuple(current), "base")} if current else set()
    out = [Check("database", "ok", f"connected to {shown}")]
    if heads <= applied:
        out.append(Check("migrations", "ok", "the schema is up to date"))
        if not triggers:
            out.append(Check("bank revisions", "warn", "the triggers on `entries` are missing (a store restored "
                                                       "without them?): scans read the known-good set from the "
                                                       "store every time; see docs/operators.md"))
    else:
        out.append(Check("migrations", "warn", f"schema at {sorted(current) or 'nothing'}, code expects "
                                               f"{sorted(heads)}: the next command migrates it"))
    return out + ([scans] if scans else [])


#: Unfinished scans named by `vigie doctor` (the count says how many more).
SCANS_SHOWN = 5


def _scans(conn, settings: Settings) -> Check | None:
    """Scans that did not finish: those stopped by a kill or a crash (status `running` with no process holding
    the scan's lock, `vigie.ingest.scan.run_scan`), `failed` or `interrupted` ones, and those running now.
    Running the same `vigie scan` command again resumes each."""
    from sqlalchemy import text

    from vigie.store.db import lock_held

    try:
        rows = conn.execute(text("SELECT id, key, case_id, status, sources FROM scans "
                                 "WHERE status IN ('running', 'failed', 'interrupted') ORDER BY id")).all()
    except Exception:  # noqa: BLE001 - no scans table yet: the migrations check says so
        conn.rollback()
        return None
    stopped, running = [], 0
    for r in rows:
        if r.status == "running" and lock_held(conn, settings, f"scan-{r.key}"):
            running += 1
        else:
            stopped.append(r)
    conn.rollback()
    if not stopped:
        return Check("scans", "ok", f"{running} scan(s) running now" if running else "no unfinished scan")
    def shown(r) -> str:
        how = "killed or crashed" if r.status == "running" else r.status
        srcs = json.loads(r.sources) if isinstance(r.sources, str) else r.sources  # SQLite: JSON as text
        srcs = srcs if isinstance(srcs, list) else []
        return f"scan {r.id} ({how}; case {r.case_id or '-'}; {', '.join(map(str, srcs[:2]))})"
    more = f" and {len(stopped) - SCANS_SHOWN} more" if len(stopped) > SCANS_SHOWN else ""
    return Check("scans", "warn", f"{len(stopped)} scan(s) stopped before the end: "
                                  f"{'; '.join(shown(r) for r in stopped[:SCANS_SHOWN])}{more}. Run the same "
                                  "`vigie scan` command (same sources, same --case) to resume each"
                                  + (f"; {running} running now" if running else ""))


def _revision_triggers(conn) -> bool:
    from vigie.store import revisions

    try:
        return revisions.present(conn)
    except Exception:  # noqa: BLE001 - no entries table yet: the migrations check says so
        return True


def _media_key(settings: Settings) -> Check:
    raw = settings.media_key.get_secret_value() if settings.media_key else os.environ.get("VIGIE_MEDIA_KEY")
    if not raw:
        return Check("media key", "warn", "VIGIE_MEDIA_KEY is not set: nothing can be queued for review")
    try:
        ok = len(base64.b64decode(raw, validate=True)) == 32
    except Exception:  # noqa: BLE001
        ok = False
    return Check("media key", "ok" if ok else "fail",
                 "a 32-byte AES key is configured" if ok else "VIGIE_MEDIA_KEY is not base64 of 32 bytes")


def _index(settings: Settings) -> Check:
    d = settings.index_dir
    if not d.exists():
        return Check("index", "warn", f"no saved index in {d}: the first match builds it")
    n = sum(1 for _ in d.rglob("state.json"))
    return Check("index", "ok", f"{n} saved index set(s) in {d}")


def _sharing_key(settings: Settings) -> Check:
    from vigie.sharing.keys import key_path

    p = key_path(settings)
    if not p.exists():
        return Check("sharing key", "warn", "no signing key yet: `vigie share key` creates it when you share")
    mode = p.stat().st_mode & 0o777
    if mode & 0o077:
        return Check("sharing key", "fail", f"{p} is readable by others (mode {mode:o}): chmod 600 it")
    return Check("sharing key", "ok", f"signing key at {p}")


def _data_dir(settings: Settings) -> Check:
    d = settings.data_dir
    if not d.exists():
        return Check("data folder", "warn", f"{d} does not exist yet")
    if not os.access(d, os.W_OK):
        return Check("data folder", "fail", f"{d} is not writable by this user")
    st = os.statvfs(d)
    free = st.f_bavail * st.f_frsize
    return Check("data folder", "ok" if free > 1 << 30 else "warn", f"{d}: {free / 2**30:.1f} GiB free")


def _settings(settings: Settings) -> list[Check]:
    out = []
    if not settings.cookie_secure:
        out.append(Check("cookies", "warn", "VIGIE_COOKIE_SECURE is off: fine on loopback, set it behind TLS"))
    if settings.review_consensus < 2:
        out.append(Check("consensus", "warn", "one analyst's decision takes effect alone (VIGIE_REVIEW_CONSENSUS=1)"))
    return out


def _intake(settings: Settings) -> list[Check]:
    """Takedown notices need SMTP; the crawler must not be opened to private networks by mistake."""
    import ipaddress

    out = []
    if not settings.smtp_host:
        out.append(Check("smtp", "warn", "VIGIE_SMTP_HOST is not set: takedown notices are recorded as failed "
                                         "(smtp_not_configured) until it is"))
    else:
        out.append(Check("smtp", "ok", f"notices go through {settings.smtp_host}:{settings.smtp_port}"
                                       f"{' with STARTTLS' if settings.smtp_starttls else ''}"))
    try:
        nets = [ipaddress.ip_network(n, strict=False) for n in settings.crawl_allowed_networks]
    except ValueError as exc:
        return [*out, Check("crawler", "fail", f"VIGIE_CRAWL_ALLOWED_NETWORKS: {exc}")]
    if nets:
        out.append(Check("crawler", "warn", "the crawler may reach private networks "
                                            f"{', '.join(map(str, nets))} (VIGIE_CRAWL_ALLOWED_NETWORKS): a public "
                                            "report can then make it fetch from inside them"))
    else:
        out.append(Check("crawler", "ok", "the crawler reaches public addresses only"))
    if settings.asn_table and not Path(settings.asn_table).is_file():
        out.append(Check("asn table", "fail", f"VIGIE_ASN_TABLE: {settings.asn_table} is not a readable file"))
    return out


#: VIGIE_* variables that are not settings but are read on purpose (the test suite's PostgreSQL server).
OTHER_VARIABLES = frozenset({"VIGIE_TEST_POSTGRES_URL"})


def _unknown_variables(environ=None) -> list[Check]:
    """A mistyped VIGIE_* variable is silently ignored by the settings: a limit an operator believes is set (say
    VIGIE_LOGIN_MAX_FAILURE) would not be. Name each one, with the closest real setting."""
    import difflib

    known = {f"VIGIE_{n.upper()}" for n in Settings.model_fields} | OTHER_VARIABLES
    env = os.environ if environ is None else environ
    out = []
    for name in sorted(k for k in env if k.upper().startswith("VIGIE_") and k.upper() not in known):
        near = difflib.get_close_matches(name.upper(), sorted(known), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        out.append(Check("settings", "warn", f"{name} is not a Vigie setting and is ignored{hint}"))
    return out


def run(settings: Settings) -> list[Check]:
    checks = [_data_dir(settings), *_database(settings), _index(settings), _media_key(settings),
              _sharing_key(settings), *_settings(settings), *_intake(settings), *_unknown_variables()]
    return checks
