"""Opening the store: engine, sessions, migrations.

SQLite is the embedded default, in WAL mode so readers never block the writer;
PostgreSQL takes over for several users. Both run the same Alembic migrations and
the same code; the store tests run on both.

Write transactions (`Store.session()`) start with `BEGIN IMMEDIATE` on SQLite: the write lock is
taken when the transaction starts, not at its first write, so two processes that read and then
write (a consensus decision, an audit append) run one after the other instead of both reading
the same state. SQLite ignores `SELECT ... FOR UPDATE`; this is what gives it the outcome of a
serial order. Read-only sessions (`Store.sessions()`) keep a plain `BEGIN` and never block a writer.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import orjson
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from vigie.errors import Conflict
from vigie.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class Store:
    """The store: an engine and a session factory. Build with `Store.open(settings)`."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Store:
        url = settings.effective_database_url
        # orjson: JSON columns are serialised per row, and a ten-million-row import feels it.
        js = {"json_serializer": _dumps, "json_deserializer": orjson.loads}
        # Nothing Vigie writes is for other local users: files 0600, folders 0700 (docs/operators.md).
        os.umask(os.umask(0o077) | 0o077)
        for d in (settings.data_dir, settings.index_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            d.chmod(0o700)
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30}, **js)
            db = engine.url.database or ":memory:"
            for p in ((db, f"{db}-wal", f"{db}-shm") if db != ":memory:" else ()):
                if os.path.exists(p):  # made by an earlier version, before the umask above
                    os.chmod(p, 0o600)
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(url, pool_pre_ping=True, **js)
        store = cls(engine, settings)
        if migrate:
            store.migrate()
        return store

    @property
    def index_dir(self) -> Path:
        """This store's folder under the settings' index folder (the matcher's indexes, the known-good set),
        named by the database address, so that two stores sharing a data folder never share an index."""
        import hashlib

        key = hashlib.sha256(self.engine.url.render_as_string(hide_password=True).encode()).hexdigest()[:12]
        return self.settings.index_dir / key

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection_engine"] = self.engine
        cfg.attributes["settings"] = self.settings  # 0014 seals stored secrets with the media key
        command.upgrade(cfg, "heads")

    @contextmanager
    def session(self):
        """A write session in one transaction: committed on success, rolled back on error. On SQLite the
        transaction holds the write lock from its start (BEGIN IMMEDIATE; see the module docstring)."""
        sqlite = self.engine.dialect.name == "sqlite"
        held = _held.__dict__.setdefault("engines", set())
        if sqlite and id(self.engine) in held:
            # The outer write transaction of this thread holds SQLite's write lock: this one would wait for it
            # until busy_timeout and fail. Pass the outer session down instead.
            raise RuntimeError("a write session was opened inside another one on the same thread (SQLite)")
        with self.sessions() as s, s.begin():
            if sqlite:
                s.connection(execution_options={WRITE_OPTION: True})
                held.add(id(self.engine))
            try:
                yield s
            finally:
                held.discard(id(self.engine))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def exclusive(self, name: str):
        """Yield True to the one caller, across processes and machines, that holds the lock `name` now;
        False to the others (they skip the work rather than wait). PostgreSQL: a session advisory lock;
        SQLite (one machine): an flock on a file beside the database."""
        if self.dialect == "postgresql":  # one lock per schema: two Vigie stores may share a database
            with self.engine.connect() as conn:
                key = conn.execute(text(LOCK_KEY), {"n": name}).scalar()
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
                conn.commit()  # a session lock outlives the transaction: not left idle in one for a long holder
                held = Held(name, conn, key)
                try:
                    yield held if got else False
                finally:
                    held.conn = None
                    if got and not held.lost:
                        try:
                            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                            conn.commit()
                        except DBAPIError:  # the session is gone, and its lock with it
                            log.warning("the lock %s went with its database session", name)
            return
        import fcntl

        path = lock_path(self.settings, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "a+") as f:  # 0600, as every file of Vigie
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield Held(name)
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


class LockLost(Conflict):
    """A lock of `Store.exclusive` that its holder no longer holds: its database session ended (the server
    restarted, the connection dropped, an administrator ended the backend), so another process may take it
    and do the same work at once."""

    code = "lock_lost"


class Held:
    """What `Store.exclusive` yields to the holder of a lock: true, and `check()` says whether it still holds it.

    An flock (SQLite) lasts as long as its process. A PostgreSQL session lock lasts as long as its session: when
    the connection drops, the server releases it, and nothing tells the holder, which goes on working while a
    second run of the same work may start. Long holders (a scan) call `check()` at each batch they write."""

    __slots__ = ("name", "conn", "key", "lost")

    def __init__(self, name: str, conn=None, key: int | None = None) -> None:
        self.name, self.conn, self.key, self.lost = name, conn, key, False

    def __bool__(self) -> bool:
        return True

    def check(self) -> None:
        """Raise `LockLost` (code `lock_lost`) if the lock is no longer this holder's (PostgreSQL: its session
        ended, or holds it no more); nothing on SQLite, whose flock lives as long as the process."""
        if self.conn is None or self.key is None:
            return
        classid, objid = (self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF  # a bigint key's two halves
        try:
            ok = self.conn.execute(text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                " AND granted AND classid::bigint = :c AND objid::bigint = :o AND objsubid = 1)"),
                {"c": classid, "o": objid}).scalar()
            self.conn.commit()
        except DBAPIError as exc:
            ok = False
            log.warning("the lock %s: its database session failed (%s)", self.name, exc.orig or exc)
        if not ok:
            self.lost = True
            raise LockLost(f"the lock {self.name!r} was lost: its database session ended (the server restarted or "
                           "the connection dropped), so another process may be doing the same work; stopped here "
                           "(run the command again to go on)")


#: The advisory lock of `Store.exclusive(name)` on PostgreSQL: one per schema (two Vigie stores may share a database).
LOCK_KEY = "SELECT hashtextextended('vigie:' || current_schema() || ':' || :n, 0)"


def lock_path(settings, name: str) -> Path:
    """The file whose flock is `Store.exclusive(name)` on SQLite."""
    return Path(settings.data_dir) / f".{name}.lock"


def lock_held(conn, settings, name: str) -> bool:
    """Whether some process holds `Store.exclusive(name)` now (for `vigie doctor`: takes the lock for an instant
    if it is free, creates no file). `conn`: a connection to the store's database."""
    if conn.dialect.name == "postgresql":
        key = conn.execute(text(LOCK_KEY), {"n": name}).scalar()
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            return True
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return False
    import fcntl

    try:
        fd = os.open(lock_path(settings, name), os.O_RDONLY)
    except FileNotFoundError:
        return False  # never taken on this store
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def _dumps(obj) -> str:
    return orjson.dumps(obj, default=str).decode()


WRITE_OPTION = "vigie_write"
_held = threading.local()


def _sqlite_begin(conn) -> None:
    """Emit BEGIN ourselves (pysqlite's own transaction handling is off, see `_sqlite_pragmas`)."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-262144")  # 256 MiB: index pages of large banks stay in memory on import
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()
    # SQLAlchemy's "begin" event emits BEGIN or BEGIN IMMEDIATE (see `_sqlite_begin`).
    dbapi_conn.isolation_level = None


def session_of(store: Store) -> Session:
    return store.sessions()
