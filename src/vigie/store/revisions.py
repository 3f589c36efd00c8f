"""Bank revisions: `banks.entries_revision`, raised by the database itself whenever a bank's entries change.

A scan keeps the known-good set (NIST NSRL: millions of digests) on disk between scans and must know, in one
query, whether the banks changed since (`vigie.banks.known_good.fingerprint`). Triggers raise the counter on
any insert, update or delete of an entry, whatever code made it, hand-written SQL included; no caller has to
remember. Created by migration 0019.

- SQLite: row triggers (its writers are serialised anyway). A known-good bulk import of millions of rows
  takes the insert trigger out for its own transaction (`bulk_insert`) and raises the revision once: the row
  trigger made a 2-million-row import 23 % slower.
- PostgreSQL: statement triggers with transition tables, one UPDATE per statement, not per row (a row trigger
  would write a new version of the bank's row for each imported entry); only known-good banks are counted, so
  that transactions adding review decisions to match banks never wait on each other for a bank's row.
"""

from __future__ import annotations

from contextlib import contextmanager

SQLITE = {
    "insert": "AFTER INSERT ON entries BEGIN "
              "UPDATE banks SET entries_revision = entries_revision + 1 WHERE id = NEW.bank_id; END",
    "update": "AFTER UPDATE ON entries BEGIN "
              "UPDATE banks SET entries_revision = entries_revision + 1 WHERE id IN (OLD.bank_id, NEW.bank_id); END",
    "delete": "AFTER DELETE ON entries BEGIN "
              "UPDATE banks SET entries_revision = entries_revision + 1 WHERE id = OLD.bank_id; END",
}

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION vigie_entries_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE banks SET entries_revision = entries_revision + 1
        WHERE kind = 'known_good' AND id IN (SELECT DISTINCT bank_id FROM vigie_new);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE banks SET entries_revision = entries_revision + 1
        WHERE kind = 'known_good' AND id IN (SELECT bank_id FROM vigie_new UNION SELECT bank_id FROM vigie_old);
    ELSE
        UPDATE banks SET entries_revision = entries_revision + 1
        WHERE kind = 'known_good' AND id IN (SELECT DISTINCT bank_id FROM vigie_old);
    END IF;
    RETURN NULL;
END $$
"""

PG = {
    "insert": "AFTER INSERT ON entries REFERENCING NEW TABLE AS vigie_new",
    "update": "AFTER UPDATE ON entries REFERENCING OLD TABLE AS vigie_old NEW TABLE AS vigie_new",
    "delete": "AFTER DELETE ON entries REFERENCING OLD TABLE AS vigie_old",
}


def name(event: str) -> str:
    return f"vigie_entries_revision_{event}"


def create_statements(dialect: str) -> list[str]:
    """The DDL that creates the triggers (migration 0019)."""
    if dialect == "postgresql":
        return [PG_FUNCTION] + [f"CREATE TRIGGER {name(e)} {spec} FOR EACH STATEMENT EXECUTE FUNCTION "
                                "vigie_entries_revision()" for e, spec in PG.items()]
    return [f"CREATE TRIGGER {name(e)} {body}" for e, body in SQLITE.items()]


def drop_statements(dialect: str) -> list[str]:
    pg = dialect == "postgresql"
    out = [f"DROP TRIGGER IF EXISTS {name(e)}" + (" ON entries" if pg else "") for e in SQLITE]
    return out + (["DROP FUNCTION IF EXISTS vigie_entries_revision()"] if pg else [])


def present(conn) -> bool:
    """Whether all three triggers are in place (a store restored without them, or an operator who dropped them:
    the revisions would stand still, and a set saved by revision would be trusted after it went out of date)."""
    names = [name(e) for e in SQLITE]
    if conn.dialect.name == "postgresql":
        found = conn.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE tgrelid = 'entries'::regclass "
                                     "AND NOT tgisinternal").scalars().all()
    else:
        found = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                     "AND tbl_name = 'entries'").scalars().all()
    return set(names) <= set(found)


@contextmanager
def bulk_insert(conn, bank_id: int):
    """Around many inserts into one bank in the caller's transaction: on SQLite the insert trigger is taken
    out for that transaction only (DDL is transactional there: no other connection ever sees it missing, and a
    rollback puts it back) and the bank's revision is raised once at the end. On PostgreSQL nothing changes:
    its trigger already fires once per statement."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name('insert')}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"CREATE TRIGGER IF NOT EXISTS {name('insert')} {SQLITE['insert']}")
        conn.exec_driver_sql("UPDATE banks SET entries_revision = entries_revision + 1 WHERE id = ?", (bank_id,))
