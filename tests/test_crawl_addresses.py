"""Host names as browsers read them (IDNA 2008 / UTS 46), IPv6 forms that carry a private IPv4 address,
site-local IPv6, and sites by registrable domain. Nothing here connects anywhere: every refusal is decided
from the address itself.
"""

from __future__ import annotations

import asyncio

import pytest

from vigie.ingest.addresses import AddressPolicy, ascii_host, embedded_ipv4, site_of
from vigie.ingest.crawl import Fetcher, FetchError
from vigie.settings import Settings


@pytest.mark.parametrize(("name", "wire"), [
    ("faß.de", "xn--fa-hia.de"), ("FAß.DE", "xn--fa-hia.de"), ("bücher.example", "xn--bcher-kva.example"),
    ("Example.COM.", "example.com"), ("xn--fa-hia.de", "xn--fa-hia.de"), ("127.0.0.1", "127.0.0.1"),
    ("[::1]", "::1"), ("ＥＸＡＭＰＬＥ.com", "example.com")])
def test_host_names_follow_idna_2008_as_browsers_do(name, wire):
    assert ascii_host(name) == wire


@pytest.mark.parametrize("name", ["xn--zz.example", "a b.example", "a<b.example", "ex%41mple.com", "\u0378x.de"])
def test_invalid_international_names_are_refused(name):
    with pytest.raises(FetchError) as ei:
        ascii_host(name)
    assert ei.value.code == "bad_url"


REFUSED_V6 = [
    "64:ff9b::a00:1",          # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",         # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",      # NAT64 of 169.254.169.254
    "64:ff9b:1::a00:1",        # local-use NAT64
    "64:ff9b:1:abcd::808:808",
    "2002:a00:1::1",           # 6to4 of 10.0.0.1
    "2002:7f00:1::",           # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",       # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "::a00:1",                 # IPv4-compatible 10.0.0.1
    "::7f00:1",                # IPv4-compatible 127.0.0.1
    "::808:808",               # IPv4-compatible, deprecated whatever it carries
    "::ffff:0:a00:1",          # IPv4-translated 10.0.0.1
    "::ffff:0:808:808",        # IPv4-translated, deprecated
    "::ffff:10.0.0.1",         # IPv4-mapped
    "fec0::1", "fed0:1::2", "feff::1",  # site-local fec0::/10
]


@pytest.mark.parametrize("ip", REFUSED_V6)
def test_ipv6_forms_of_private_addresses_are_refused(ip):
    assert not AddressPolicy().allows(ip)


@pytest.mark.parametrize("ip", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_ipv6_forms_of_global_addresses_are_allowed(ip):
    assert AddressPolicy().allows(ip)


def test_embedded_ipv4_is_read_from_each_form():
    import ipaddress

    def v4(ip):
        return [str(a) for a in embedded_ipv4(ipaddress.IPv6Address(ip))]
    assert v4("64:ff9b::a00:1") == ["10.0.0.1"] and v4("2002:a00:1::") == ["10.0.0.1"]
    assert v4("2001:0:4136:e378:8000:63bf:f5ff:fffe") == ["65.54.227.120", "10.0.0.1"]
    assert v4("::ffff:10.0.0.1") == ["10.0.0.1"] and v4("2606:4700:4700::1111") == []


def test_an_allowed_network_does_not_open_its_ipv6_forms():
    p = AddressPolicy(["127.0.0.1/32"])
    assert p.allows("127.0.0.1") and p.allows("::ffff:127.0.0.1")
    assert not p.allows("64:ff9b::7f00:1") and not p.allows("2002:7f00:1::") and not p.allows("::7f00:1")


@pytest.mark.parametrize("ip", ["64:ff9b::a00:1", "2002:a00:1::1", "fec0::1", "::ffff:0:a00:1"])
def test_urls_with_such_addresses_are_refused_before_any_connection(tmp_path, ip):
    class NoConnect:
        async def handle_async_request(self, request):  # the transport is never reached
            raise AssertionError(f"connected to {request.url}")

        async def aclose(self):
            pass

    async def go():
        async with Fetcher(Settings(data_dir=tmp_path), transport=NoConnect()) as f:
            return await f.fetch(f"http://[{ip}]/a.jpg", 1000)

    with pytest.raises(FetchError) as ei:
        asyncio.run(go())
    assert ei.value.code == "private_address"


@pytest.mark.parametrize(("host", "site"), [
    ("www.example.com", "example.com"), ("a.b.example.co.uk", "example.co.uk"), ("example.co.uk", "example.co.uk"),
    ("alice.github.io", "alice.github.io"), ("cdn.alice.github.io", "alice.github.io"), ("127.0.0.1", "127.0.0.1"),
    ("localhost", "localhost"), ("www.faß.de", "xn--fa-hia.de"), ("co.uk", "co.uk")])
def test_sites_are_registrable_domains(host, site):
    assert site_of(host) == site
