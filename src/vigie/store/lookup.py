"""A read that a scan's hashing workers make for every file, without importing SQLAlchemy or the store's models.

Each worker asks, for every file it hashes, whether this scan already holds a location with the same
content (`vigie.ingest.scan_worker.known_in_store`: a copy hashed by another worker, or before a resume). The
query is written and compiled once in the scan's process, with SQLAlchemy and the models, for the store's
dialect (`compile_query`); each worker runs it on a DB-API connection of its own (`Reader`), in autocommit,
so that it sees each batch of rows as soon as it is committed. A worker then imports neither SQLAlchemy nor
the models: 0.16 s (SQLite) to 0.28 s (PostgreSQL) less at each worker's start, and a quarter of the time
per look-up (measured in docs/scanning.md, seventh round).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import orjson


@dataclass(frozen=True)
class Query:
    """A compiled read: the DB-API module and its connect arguments, the SQL, its parameters' order (None: by
    name) and the names of the columns it returns (`json` ones are decoded where the driver returns text)."""

    dbapi: str
    args: tuple
    kwargs: dict
    sql: str
    order: tuple[str, ...] | None
    columns: tuple[str, ...]
    json: frozenset[str] = field(default_factory=frozenset)
    fixed: dict = field(default_factory=dict)  # values the statement carries itself (a LIMIT's)


def compile_query(database_url: str, stmt) -> Query:
    """`stmt` (a SQLAlchemy select with named bind parameters) compiled for the store at `database_url`."""
    from sqlalchemy import JSON
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    dialect_cls = url.get_dialect()
    dbapi = dialect_cls.import_dbapi()
    dialect = dialect_cls(dbapi=dbapi)
    args, kwargs = dialect.create_connect_args(url)
    # plain values only: SQLAlchemy's psycopg dialect adds an adapters map of its own (unpicklable, and not needed
    # here: JSON comes back decoded by psycopg's own loaders, or as text that `Reader` decodes)
    kwargs = {k: v for k, v in kwargs.items() if v is None or isinstance(v, (str, int, float, bytes))}
    if dbapi.__name__.startswith("sqlite3"):  # sqlite3.dbapi2
        kwargs = {**kwargs, "timeout": 30}  # as the store's own connections (`vigie.store.db`)
    compiled = stmt.compile(dialect=dialect)
    order = tuple(compiled.positiontup) if compiled.positional else None
    columns = tuple(c.name for c in stmt.selected_columns)
    json = frozenset(c.name for c in stmt.selected_columns if isinstance(c.type, JSON))
    fixed = {k: v for k, v in compiled.params.items() if v is not None}
    return Query(dbapi.__name__, tuple(args), dict(kwargs), compiled.string, order, columns, json, fixed)


class Reader:
    """Runs a `Query` on one DB-API connection, opened on first use and kept (one per worker process)."""

    def __init__(self, query: Query):
        self.query = query
        self._conn = None

    def _connect(self):
        q = self.query
        mod = importlib.import_module(q.dbapi)
        if q.dbapi.startswith("sqlite3"):
            conn = mod.connect(*q.args, **q.kwargs, isolation_level=None)  # autocommit: each read sees the latest
            conn.execute("PRAGMA query_only=ON")  # this connection reads; the scan's process writes
            return conn
        return mod.connect(*q.args, **q.kwargs, autocommit=True)

    def first(self, **params) -> dict | None:
        """The first row for `params` as {column: value}, or None."""
        if self._conn is None:
            self._conn = self._connect()
        q = self.query
        params = {**q.fixed, **params}
        values = tuple(params[k] for k in q.order) if q.order is not None else params
        cur = self._conn.cursor()
        try:
            cur.execute(q.sql, values)
            row = cur.fetchone()
        finally:
            cur.close()
        if row is None:
            return None
        out = dict(zip(q.columns, row, strict=True))
        for k in q.json:
            if isinstance(out[k], (str, bytes)):
                out[k] = orjson.loads(out[k])
        return out

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def earlier_content(database_url: str) -> Query:
    """The hashing workers' look-up: the first location of scan `scan` whose content has SHA-256 `sha` and was
    hashed (a media type recorded), with what a copy reuses of it."""
    from sqlalchemy import bindparam, select

    from vigie.store.models import ScanFile

    stmt = select(ScanFile.location, ScanFile.media_type, ScanFile.pdq, ScanFile.pdq_quality, ScanFile.flags,
                  ScanFile.error_code, ScanFile.error_message, ScanFile.detail).where(
        ScanFile.scan_id == bindparam("scan"), ScanFile.sha256 == bindparam("sha"),
        ScanFile.media_type.is_not(None)).limit(1)
    return compile_query(database_url, stmt)
