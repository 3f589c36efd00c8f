"""Which autonomous system (AS) an IP address belongs to, from a table the operator supplies.

Hosting providers are often known by their AS number rather than by their many address blocks.
Vigie ships no routing data (it changes daily and must not be fetched from here), so the table is
a file named by `VIGIE_ASN_TABLE`, in one of two common shapes, one entry per line:

* ``203.0.113.0/24,64500`` (or tab-separated): a network and its AS number;
* ``203.0.113.0<TAB>203.0.113.255<TAB>64500<TAB>...``: a first and last address and the AS number,
  as in the iptoasn.com dumps (AS 0, "not routed", is skipped).

Lines that cannot be read are skipped (counted in `AsnTable.skipped`). Look-ups are a binary
search over sorted ranges; the table is loaded once per file version.
"""

from __future__ import annotations

import bisect
import ipaddress
import threading
from pathlib import Path

_CACHE: dict[tuple[str, float], AsnTable] = {}
_LOCK = threading.Lock()


class AsnTable:
    def __init__(self, rows: list[tuple[int, int, int, int]], skipped: int = 0):
        """`rows`: (version, first, last, asn) with addresses as integers."""
        self.skipped = skipped
        self._by_version: dict[int, tuple[list[int], list[int], list[int]]] = {}
        for version in (4, 6):
            mine = sorted((a, b, asn) for v, a, b, asn in rows if v == version)
            self._by_version[version] = ([r[0] for r in mine], [r[1] for r in mine], [r[2] for r in mine])

    def __len__(self) -> int:
        return sum(len(v[0]) for v in self._by_version.values())

    def lookup(self, ip: str | None) -> int | None:
        try:
            addr = ipaddress.ip_address(ip) if ip else None
        except ValueError:
            return None
        if addr is None:
            return None
        firsts, lasts, asns = self._by_version[addr.version]
        i = bisect.bisect_right(firsts, int(addr)) - 1
        # ranges may nest (a /24 inside a /16): walk back to the nearest one that holds the address
        for j in range(i, max(-1, i - 64), -1):
            if firsts[j] <= int(addr) <= lasts[j]:
                return asns[j]
        return None

    @classmethod
    def parse(cls, lines) -> AsnTable:
        rows, skipped = [], 0
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.replace(",", "\t").split("\t")]
            try:
                if "/" in parts[0]:
                    net = ipaddress.ip_network(parts[0], strict=False)
                    first, last, asn = net.network_address, net.broadcast_address, int(parts[1].upper()
                                                                                        .removeprefix("AS"))
                else:
                    first, last = ipaddress.ip_address(parts[0]), ipaddress.ip_address(parts[1])
                    asn = int(parts[2].upper().removeprefix("AS"))
                if asn <= 0 or first.version != last.version or int(last) < int(first):
                    raise ValueError
            except (ValueError, IndexError):
                skipped += 1
                continue
            rows.append((first.version, int(first), int(last), asn))
        return cls(rows, skipped)


def table(path: str | Path | None) -> AsnTable | None:
    """The table in `path` (cached until the file changes); None when no table is configured or readable."""
    if not path:
        return None
    p = Path(path)
    try:
        key = (str(p), p.stat().st_mtime)
    except OSError:
        return None
    with _LOCK:
        if key not in _CACHE:
            with open(p, encoding="utf-8", errors="replace") as f:
                _CACHE.clear()
                _CACHE[key] = AsnTable.parse(f)
        return _CACHE[key]
