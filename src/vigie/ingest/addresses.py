"""Where the crawler may go: host names as browsers read them, addresses it may connect to, and sites.

* **Names** (`ascii_host`): IDNA 2008 with the UTS 46 mapping, non-transitional, as browsers do, with
  the `idna` package: ``faß.de`` is ``xn--fa-hia.de``, never ``fass.de`` (Python's own codec is IDNA 2003).
* **Addresses** (`AddressPolicy`): only global unicast addresses, plus `crawl_allowed_networks`. Python's
  `is_global` lets through IPv6 forms that carry an IPv4 address a router may turn back into that IPv4
  address, so these are checked on the IPv4 address they embed: IPv4-mapped ``::ffff:a.b.c.d``, NAT64
  ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo ``2001::/32`` (server and client). Deprecated forms are refused
  whole: IPv4-compatible ``::/96``, IPv4-translated ``::ffff:0:0:0/96``, local-use NAT64 ``64:ff9b:1::/48``
  and site-local ``fec0::/10``. Everything here is decided without connecting.
* **Sites** (`site_of`): the registrable domain by the public suffix list (the `publicsuffixlist` package,
  which ships its own copy: nothing is fetched at run time), so ``a.example.co.uk`` and ``b.example.co.uk``
  are one site and ``alice.github.io`` and ``bob.github.io`` are two.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from functools import lru_cache

from vigie.ingest.fetch_errors import FetchError

_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_REFUSED_V6 = (_V4_COMPATIBLE, _V4_TRANSLATED, _NAT64_LOCAL, _SITE_LOCAL)
#: The URL standard's forbidden host code points (and controls).
_FORBIDDEN_HOST = frozenset(" \t\n\r#%/:<>?@[\\]^|\x00") | frozenset(chr(i) for i in range(0x20)) | {"\x7f"}


def ascii_host(host: str) -> str:
    """The host name as it goes on the wire (A-labels, lower case); IP literals unchanged.
    FetchError `bad_url` for a name IDNA 2008 refuses."""
    import idna

    h = host.strip().strip("[]").rstrip(".").lower()
    if not h:
        raise FetchError("bad_url", "no host name")
    try:
        ipaddress.ip_address(h.split("%", 1)[0])
        return h
    except ValueError:
        pass
    if any(c in _FORBIDDEN_HOST for c in h):
        raise FetchError("bad_url", f"{host!r} is not a valid host name")
    if h.isascii() and "xn--" not in h:
        return h
    try:
        return idna.encode(h, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise FetchError("bad_url", f"{host!r} is not a valid international host name: {exc}") from None


@lru_cache(maxsize=1)
def _psl():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def site_of(host: str) -> str:
    """The registrable domain of `host` (``www.example.co.uk`` -> ``example.co.uk``); an IP literal, a public
    suffix or a single label is its own site."""
    try:
        h = ascii_host(host)
    except FetchError:
        return host.lower()
    try:
        ipaddress.ip_address(h.split("%", 1)[0])
        return h
    except ValueError:
        pass
    return _psl().privatesuffix(h) or h


def embedded_ipv4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries for translation or tunnelling (none for most)."""
    if addr.ipv4_mapped is not None:
        return [addr.ipv4_mapped]
    if addr in _NAT64:
        return [ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)]
    if addr.sixtofour is not None:
        return [addr.sixtofour]
    if addr.teredo is not None:
        return list(addr.teredo)
    return []


class AddressPolicy:
    """Which IP addresses the crawler may connect to: global ones, plus `crawl_allowed_networks`."""

    def __init__(self, allowed_networks: list[str] | tuple = ()):
        self.allowed = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]

    def _opened(self, addr) -> bool:
        return any(addr.version == n.version and addr in n for n in self.allowed)

    def allows(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
        if self._opened(addr):
            return True
        if isinstance(addr, ipaddress.IPv6Address):
            inner = embedded_ipv4(addr)
            if addr.ipv4_mapped is not None:  # the socket connects to the IPv4 address itself
                return self.allows(str(addr.ipv4_mapped))
            if any(addr in n for n in _REFUSED_V6):
                return False
            if any(not (v4.is_global and not v4.is_multicast) for v4 in inner):
                return False
            if addr.is_site_local:
                return False
        return addr.is_global and not addr.is_multicast

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to (all checked); FetchError `private_address` when any is refused."""
        try:
            literal = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
            ips = [str(literal)]
        except ValueError:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(ascii_host(host), port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError, OSError) as exc:
                raise FetchError("dns_failed", f"cannot resolve {host}: {exc}") from None
            ips = list(dict.fromkeys(str(i[4][0]) for i in infos))
        if not ips:
            raise FetchError("dns_failed", f"no address for {host}")
        refused = [ip for ip in ips if not self.allows(ip)]
        if refused:
            raise FetchError("private_address", f"{host} resolves to {refused[0]}, a private, loopback, link-local "
                             "or reserved address (or an IPv6 form of one): refused (see crawl_allowed_networks)",
                             ip=refused[0])
        return ips
