"""DnsPythonResolver against a real DNS server on 127.0.0.1 (tests/dns_server.py).

Every resolver here is given the loopback server explicitly: no test reads
/etc/resolv.conf or sends a packet off the machine.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator

import pytest

from postoffice.delivery.mx import MailHosts, MailTarget, RouteFailure, mail_hosts, relay_hosts
from postoffice.delivery.resolver import (
    AddressAnswer,
    DnsError,
    DnsNoSuchDomain,
    DnsPermanentError,
    DnsPythonResolver,
    DnsTemporaryError,
    MxRecord,
)
from postoffice.directory.tables.mailertable import RelayHost
from tests.dns_server import LoopbackDnsServer

TIMEOUT = 0.5


@pytest.fixture
def server() -> Iterator[LoopbackDnsServer]:
    with LoopbackDnsServer() as dns_server:
        dns_server.add("b.test", "MX", "10 MX.B.test.")
        dns_server.add("b.test", "MX", "20 backup.b.test.")
        dns_server.add("mx.b.test", "A", "127.0.0.3")
        dns_server.add("mx.b.test", "AAAA", "::1")
        dns_server.add("backup.b.test", "A", "127.0.0.4")
        yield dns_server


@pytest.fixture
def resolver(server: LoopbackDnsServer) -> DnsPythonResolver:
    return DnsPythonResolver(server.nameservers, timeout=TIMEOUT)


# -- the resolver --------------------------------------------------------------------


def test_only_the_given_nameserver_is_used(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    assert resolver.nameservers == [f"127.0.0.1@{server.port}"]


def test_bad_nameserver_configuration_is_a_dns_error() -> None:
    with pytest.raises(DnsError, match="IP address"):
        DnsPythonResolver([("ns.example.test", 53)])
    with pytest.raises(DnsError, match="port"):
        DnsPythonResolver([("127.0.0.1", 0)])
    with pytest.raises(DnsError, match="no nameservers"):
        DnsPythonResolver([])


async def test_mx_records_are_canonical(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    answer = await resolver.mx("B.Test")
    assert sorted(answer.records, key=lambda r: r.preference) == [
        MxRecord(10, "mx.b.test"),
        MxRecord(20, "backup.b.test"),
    ]
    assert server.queries == [("b.test", "MX")]


async def test_null_mx_exchange_is_empty(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    server.add("nomail.test", "MX", "0 .")
    assert (await resolver.mx("nomail.test")).records == (MxRecord(0, ""),)


async def test_addresses_are_ipv4_then_ipv6(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    server.add("multi.test", "AAAA", "2001:db8::1")
    server.add("multi.test", "A", "127.0.0.5")
    server.add("multi.test", "A", "127.0.0.6")
    answer = await resolver.addresses("multi.test")
    assert answer == AddressAnswer(("127.0.0.5", "127.0.0.6", "2001:db8::1"))
    assert sorted(server.queries) == [("multi.test", "A"), ("multi.test", "AAAA")]


async def test_nodata_is_an_empty_answer(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    assert (await resolver.mx("mx.b.test")).records == ()
    assert await resolver.addresses("b.test") == AddressAnswer(())
    assert await resolver.txt("b.test") == []
    server.add("deep.below.empty.test", "A", "127.0.0.7")
    # RFC 8020: a name with names below it exists (an empty non-terminal).
    assert (await resolver.mx("below.empty.test")).records == ()


async def test_nxdomain_raises_no_such_domain(resolver: DnsPythonResolver) -> None:
    with pytest.raises(DnsNoSuchDomain, match=r"nowhere\.test"):
        await resolver.mx("nowhere.test")
    with pytest.raises(DnsNoSuchDomain):
        await resolver.addresses("nowhere.test")
    with pytest.raises(DnsNoSuchDomain):
        await resolver.txt("nowhere.test")


@pytest.mark.parametrize("rcode", ["SERVFAIL", "REFUSED"])
async def test_server_failure_is_temporary(
    server: LoopbackDnsServer, resolver: DnsPythonResolver, rcode: str
) -> None:
    server.set_failure("b.test", rcode)
    started = time.monotonic()
    with pytest.raises(DnsTemporaryError, match=rcode):
        await resolver.mx("b.test")
    assert time.monotonic() - started < TIMEOUT
    server.clear_failure("b.test")
    assert (await resolver.mx("b.test")).records


async def test_timeout_is_temporary_within_the_lifetime(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    server.set_failure("slow.test", "TIMEOUT")
    started = time.monotonic()
    with pytest.raises(DnsTemporaryError, match="timed out"):
        await resolver.mx("slow.test")
    elapsed = time.monotonic() - started
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 0.25
    assert ("slow.test", "MX") in server.queries


async def test_one_family_timing_out_keeps_the_other(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    server.set_failure("mx.b.test", "TIMEOUT", "AAAA")
    assert await resolver.addresses("mx.b.test") == AddressAnswer(("127.0.0.3",))
    server.set_failure("mx.b.test", "SERVFAIL", "A")
    with pytest.raises(DnsTemporaryError):
        await resolver.addresses("mx.b.test")


async def test_truncated_udp_answer_is_asked_again_over_tcp(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    strings = [f'"{chr(97 + i) * 200}"' for i in range(4)]
    server.add("big.test", "TXT", " ".join(strings))  # 800+ octets: over 512
    server.add("small.test", "TXT", '"v=spf1 " "-all"')
    (text,) = await resolver.txt("big.test")
    assert text == "".join(s.strip('"') for s in strings)
    assert server.queries == [("big.test", "TXT"), ("big.test", "TXT")]
    assert server.tcp_queries == [("big.test", "TXT")]
    assert await resolver.txt("small.test") == ["v=spf1 -all"]  # RFC 7208 §3.3
    assert server.tcp_queries == [("big.test", "TXT")]


async def test_cname_is_followed(server: LoopbackDnsServer, resolver: DnsPythonResolver) -> None:
    server.add("alias.test", "CNAME", "mx.b.test.")
    assert (await resolver.addresses("alias.test")).addresses == ("127.0.0.3", "::1")


async def test_malformed_name_is_permanent_and_never_sent(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    for name in ("a..test", "x" * 64 + ".test", ""):
        with pytest.raises(DnsPermanentError):
            await resolver.mx(name)
    assert server.queries == []


async def test_answers_follow_live_changes_without_a_cache(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    with pytest.raises(DnsNoSuchDomain):
        await resolver.mx("new.test")
    server.add("new.test", "MX", "5 mx.b.test.")
    assert (await resolver.mx("new.test")).records == (MxRecord(5, "mx.b.test"),)
    server.remove("new.test")
    with pytest.raises(DnsNoSuchDomain):
        await resolver.mx("new.test")
    assert server.queries == [("new.test", "MX")] * 3


async def test_the_optional_cache_saves_queries(server: LoopbackDnsServer) -> None:
    cached = DnsPythonResolver(server.nameservers, timeout=TIMEOUT, cache=True)
    await cached.mx("b.test")
    await cached.mx("b.test")
    assert server.queries == [("b.test", "MX")]


def test_the_server_ignores_garbage_and_keeps_serving(server: LoopbackDnsServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        sock.sendto(b"\x00\x01garbage", (server.host, server.port))
        with pytest.raises(TimeoutError):
            sock.recv(512)
    assert server.errors == []


def test_the_server_binds_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LoopbackDnsServer("0.0.0.0")


# -- mail_hosts end to end -------------------------------------------------------------


async def test_mail_hosts_over_real_dns(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    result = await mail_hosts("b.test", resolver, rng=random.Random(1))
    assert isinstance(result, MailHosts)
    assert result.targets == (
        MailTarget("mx.b.test", "127.0.0.3", 10),
        MailTarget("mx.b.test", "::1", 10),
        MailTarget("backup.b.test", "127.0.0.4", 20),
    )


async def test_mail_hosts_loop_by_address_over_real_dns(resolver: DnsPythonResolver) -> None:
    result = await mail_hosts("b.test", resolver, my_addresses={"127.0.0.4"}, rng=random.Random(1))
    assert isinstance(result, MailHosts)
    assert [t.host for t in result.targets] == ["mx.b.test", "mx.b.test"]
    looped = await mail_hosts("b.test", resolver, my_addresses={"::1"}, rng=random.Random(1))
    assert isinstance(looped, RouteFailure)
    assert str(looped.reply) == "554 5.4.6 mail for b.test loops back to myself"


async def test_mail_hosts_outcomes_over_real_dns(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    server.add("nomail.test", "MX", "0 .")
    server.add("plain.test", "A", "127.0.0.8")
    server.set_failure("broken.test", "SERVFAIL")
    server.add("half.test", "MX", "10 slow.half.test.")
    server.add("half.test", "MX", "20 mx.b.test.")
    server.set_failure("slow.half.test", "TIMEOUT")
    rng = random.Random(1)

    async def outcome(domain: str) -> str:
        result = await mail_hosts(domain, resolver, rng=rng)
        if isinstance(result, RouteFailure):
            return f"{result.reply.code} {result.reply.enhanced}"
        return " ".join(f"{t.host}/{t.address}" for t in result.targets)

    assert await outcome("nomail.test") == "556 5.1.10"
    assert await outcome("plain.test") == "plain.test/127.0.0.8"  # implicit MX
    assert await outcome("broken.test") == "451 4.4.3"
    assert await outcome("nowhere.test") == "550 5.1.2"
    # The first MX host times out: skipped, the next one is used.
    assert await outcome("half.test") == "mx.b.test/127.0.0.3 mx.b.test/::1"


async def test_relay_hosts_over_real_dns(
    server: LoopbackDnsServer, resolver: DnsPythonResolver
) -> None:
    server.add("gw.test", "A", "127.0.0.9")
    route = (RelayHost("gw.test", mx_lookup=False, port=2525), RelayHost("b.test", True))
    result = await relay_hosts(route, resolver, rng=random.Random(1), default_port=25)
    assert isinstance(result, MailHosts)
    assert [(t.address, t.port) for t in result.targets] == [
        ("127.0.0.9", 2525),
        ("127.0.0.3", 25),
        ("::1", 25),
        ("127.0.0.4", 25),
    ]
    assert ("gw.test", "MX") not in server.queries
