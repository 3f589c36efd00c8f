"""Small secrets kept in the database, sealed with the media key: partners' API keys, reporters' contacts.

Whoever copies the database file (a backup, a stolen disk, a PostgreSQL dump) should learn neither
the credential this hotline holds at a partner nor how to reach a person who reported. Both are
sealed with AES-256-GCM under the media key (`vigie.review.media.media_key`, ``VIGIE_MEDIA_KEY``),
a fresh 96-bit nonce each time, the associated data naming the column (``table.column``) so a
sealed value copied into another column does not open. The stored text is
``sealed:v1:<key id>:<base64 of nonce + ciphertext>``; the key itself is never in the database.

A value written while no media key was configured stays in clear (a public report is never refused
for it); migration 0014 and `seal_existing` seal such values once the key is set. Reading a sealed
value with no key, or another key, raises `MediaKeyError` (``no_media_key`` / ``media_key_mismatch``).
"""

from __future__ import annotations

import base64
import os

PREFIX = "sealed:v1:"
#: (table, column) of every sealed value; `seal_existing` walks these.
COLUMNS = (("subscriptions", "api_key"), ("reports", "contact"))


def is_sealed(value) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _key(settings, *, required: bool) -> tuple[bytes, str] | None:
    from vigie.review.media import MediaKeyError, media_key

    try:
        return media_key(settings)
    except MediaKeyError:
        if required:
            raise
        return None


def seal(settings, value: str | None, where: str, *, required: bool = False) -> str | None:
    """`value` sealed for the column `where` (``table.column``); None stays None. Without a media key:
    the value in clear, or MediaKeyError when `required`."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if value is None or is_sealed(value):
        return value
    got = _key(settings, required=required)
    if got is None:
        return value
    key, kid = got
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, value.encode("utf-8"), where.encode())
    return f"{PREFIX}{kid}:{base64.b64encode(nonce + ct).decode()}"


def unseal(settings, value: str | None, where: str) -> str | None:
    """The clear text of a stored value (a clear one, from before sealing, is returned as it is)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from vigie.review.media import MediaKeyError

    if not is_sealed(value):
        return value
    kid, _, blob = value[len(PREFIX):].partition(":")
    key, have = _key(settings, required=True)
    if kid != have:
        raise MediaKeyError(f"this value was sealed with key {kid}, not the configured key {have}",
                            code="media_key_mismatch")
    try:
        raw = base64.b64decode(blob, validate=True)
        return AESGCM(key).decrypt(raw[:12], raw[12:], where.encode()).decode("utf-8")
    except (InvalidTag, ValueError):
        raise MediaKeyError(f"a sealed {where} does not open: damaged, moved or another key",
                            code="media_key_mismatch") from None


def seal_existing(connection, settings) -> int:
    """Seal every clear value of `COLUMNS` through `connection` (migration 0014, or by hand after setting
    the key); the number sealed. Does nothing without a media key."""
    import sqlalchemy as sa

    if _key(settings, required=False) is None:
        return 0
    n = 0
    for table, column in COLUMNS:
        t = sa.table(table, sa.column("id", sa.Integer), sa.column(column, sa.Text))
        col = t.c[column]
        rows = connection.execute(sa.select(t.c.id, col).where(col.is_not(None), ~col.startswith(PREFIX))).all()
        for rid, value in rows:
            connection.execute(t.update().where(t.c.id == rid).values({column: seal(settings, value,
                                                                                     f"{table}.{column}")}))
            n += 1
    return n
