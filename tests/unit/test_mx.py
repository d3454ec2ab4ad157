"""Mail host selection (RFC 5321 §5.1, RFC 7505) over a StaticResolver: no sockets."""

from __future__ import annotations

import itertools
import random

import pytest

from postoffice.delivery.mx import (
    LOOKUP_FAILED,
    MX_LOOP,
    NO_MAIL_HOST,
    NO_SUCH_DOMAIN,
    NULL_MX,
    MailHosts,
    MailHostsResult,
    MailTarget,
    RouteFailure,
    discard_self_and_worse,
    discard_self_and_worse_addresses,
    is_null_mx,
    mail_hosts,
    order_mx,
    relay_hosts,
)
from postoffice.delivery.resolver import (
    AddressAnswer,
    DnsNoSuchDomain,
    DnsPermanentError,
    DnsTemporaryError,
    MxAnswer,
    MxRecord,
    StaticResolver,
    UnavailableResolver,
)
from postoffice.directory.tables.mailertable import RelayHost, parse_mailertable

TEMPORARY = DnsTemporaryError("SERVFAIL")


def rng(seed: int = 1) -> random.Random:
    return random.Random(seed)


def hosts(result: MailHostsResult) -> list[tuple[str, str]]:
    assert isinstance(result, MailHosts), result
    return [(t.host, t.address) for t in result.targets]


def failure(result: MailHostsResult) -> RouteFailure:
    assert isinstance(result, RouteFailure), result
    return result


# -- order_mx ------------------------------------------------------------------------


def test_order_mx_sorts_by_preference() -> None:
    records = [MxRecord(30, "c"), MxRecord(10, "a"), MxRecord(20, "b")]
    assert [r.exchange for r in order_mx(records, rng())] == ["a", "b", "c"]


def test_order_mx_shuffles_equal_preferences_only() -> None:
    records = [MxRecord(10, "a1"), MxRecord(10, "a2"), MxRecord(10, "a3"), MxRecord(5, "first")]
    seen = set()
    for seed in range(200):
        ordered = order_mx(records, rng(seed))
        assert ordered[0].exchange == "first"
        seen.add(tuple(r.exchange for r in ordered[1:]))
    # RFC 5321 §5.1: equal preferences are spread at random: every order occurs.
    assert seen == set(itertools.permutations(["a1", "a2", "a3"]))


def test_order_mx_is_reproducible_with_a_seeded_rng_and_leaves_input_alone() -> None:
    records = [MxRecord(10, f"h{i}") for i in range(6)]
    before = list(records)
    assert order_mx(records, rng(7)) == order_mx(records, rng(7))
    assert records == before


# -- null MX -------------------------------------------------------------------------


def test_null_mx_is_one_record_with_the_root_as_exchange() -> None:
    assert is_null_mx(MxAnswer((MxRecord(0, ""),)))
    assert is_null_mx(MxAnswer((MxRecord(10, ""),)))  # RFC 7505 §3: any preference
    assert not is_null_mx(MxAnswer(()))
    assert not is_null_mx(MxAnswer((MxRecord(0, ""), MxRecord(10, "mx.a.test"))))
    assert not is_null_mx(MxAnswer((MxRecord(0, "mx.a.test"),)))


def test_null_mx_reply_is_rfc_7505() -> None:
    assert (NULL_MX.code, NULL_MX.enhanced) == (556, "5.1.10")
    assert (MX_LOOP.code, MX_LOOP.enhanced) == (554, "5.4.6")


async def test_mail_hosts_null_mx_refuses_without_address_lookups() -> None:
    dns = StaticResolver().add_mx("nomail.test", 0, ".")
    result = await mail_hosts("nomail.test", dns, rng=rng())
    assert failure(result).reply == NULL_MX
    assert not failure(result).temporary
    assert dns.questions == [("mx", "nomail.test")]


async def test_a_root_exchange_among_other_records_is_skipped() -> None:
    dns = StaticResolver().add_mx("a.test", 0, ".").add_mx("a.test", 10, "mx.a.test")
    dns.add_address("mx.a.test", "192.0.2.1")
    assert hosts(await mail_hosts("a.test", dns, rng=rng())) == [("mx.a.test", "192.0.2.1")]


# -- MX loop rules (pure) --------------------------------------------------------------


def test_discard_self_and_worse_by_name() -> None:
    records = [MxRecord(10, "a"), MxRecord(20, "b"), MxRecord(20, "me"), MxRecord(30, "c")]
    assert discard_self_and_worse(records, {"ME."}) == [MxRecord(10, "a")]
    assert discard_self_and_worse(records, {"x"}) == records
    assert discard_self_and_worse(records, {"a"}) == []


def test_discard_self_and_worse_by_address_compares_address_spellings() -> None:
    targets = [
        MailTarget("a", "192.0.2.1", 10),
        MailTarget("b", "2001:db8::2", 20),
        MailTarget("c", "192.0.2.3", 30),
    ]
    assert discard_self_and_worse_addresses(targets, {"2001:DB8:0::2"}) == targets[:1]
    assert discard_self_and_worse_addresses(targets, {"198.51.100.1"}) == targets
    assert discard_self_and_worse_addresses(targets, {"192.0.2.1"}) == []


# -- mail_hosts ----------------------------------------------------------------------


def two_level() -> StaticResolver:
    dns = StaticResolver()
    dns.add_mx("b.test", 20, "backup.b.test").add_mx("b.test", 10, "mx.b.test")
    dns.add_address("mx.b.test", "2001:db8::1", "192.0.2.1")
    dns.add_address("backup.b.test", "192.0.2.2")
    return dns


async def test_mail_hosts_orders_hosts_and_carries_preference_and_port() -> None:
    result = await mail_hosts("B.Test", two_level(), rng=rng(), port=2525)
    assert isinstance(result, MailHosts)
    assert result.targets == (
        MailTarget("mx.b.test", "192.0.2.1", 10, 2525),  # IPv4 first
        MailTarget("mx.b.test", "2001:db8::1", 10, 2525),
        MailTarget("backup.b.test", "192.0.2.2", 20, 2525),
    )


async def test_mail_hosts_follows_the_rng_among_equal_preferences() -> None:
    dns = StaticResolver()
    for name in ("m1", "m2", "m3"):
        dns.add_mx("eq.test", 10, f"{name}.eq.test").add_address(f"{name}.eq.test", "192.0.2.9")
    expected = [r.exchange for r in order_mx(list((await dns.mx("eq.test")).records), rng(3))]
    result = await mail_hosts("eq.test", dns, rng=rng(3))
    assert [h for h, _a in hosts(result)] == expected


async def test_implicit_mx_when_the_domain_has_no_mx_records() -> None:
    dns = StaticResolver().add_address("plain.test", "192.0.2.7")
    result = await mail_hosts("plain.test", dns, rng=rng())
    assert isinstance(result, MailHosts)
    # RFC 5321 §5.1: the domain itself, as an MX of preference 0.
    assert result.targets == (MailTarget("plain.test", "192.0.2.7", 0),)
    assert dns.questions == [("mx", "plain.test"), ("addresses", "plain.test")]


async def test_implicit_mx_without_addresses_bounces_no_route() -> None:
    dns = StaticResolver().add_txt("bare.test", "v=spf1 -all")
    result = failure(await mail_hosts("bare.test", dns, rng=rng()))
    assert (result.reply.code, result.reply.enhanced) == (NO_MAIL_HOST.code, NO_MAIL_HOST.enhanced)
    assert "bare.test" in result.reply.text
    assert not result.temporary


async def test_nxdomain_bounces_5_1_2() -> None:
    result = failure(await mail_hosts("nowhere.test", StaticResolver(), rng=rng()))
    assert (result.reply.code, result.reply.enhanced) == (550, "5.1.2")
    assert result.reply.text.startswith(NO_SUCH_DOMAIN.text)
    assert "nowhere.test" in result.reply.text
    assert not result.temporary


async def test_mx_lookup_failure_is_temporary_4_4_3() -> None:
    dns = StaticResolver().fail("b.test", TEMPORARY)
    result = failure(await mail_hosts("b.test", dns, rng=rng()))
    assert (result.reply.code, result.reply.enhanced) == (451, "4.4.3")
    assert result.temporary
    assert result.reply.text.startswith(LOOKUP_FAILED.text)


async def test_malformed_name_from_the_resolver_is_permanent() -> None:
    dns = StaticResolver().fail("b.test", DnsPermanentError("bad name"))
    assert failure(await mail_hosts("b.test", dns, rng=rng())).reply.enhanced == "5.1.2"


async def test_invalid_domain_is_refused_without_a_question() -> None:
    dns = StaticResolver()
    assert failure(await mail_hosts("a..b", dns, rng=rng())).reply.enhanced == "5.1.2"
    assert dns.questions == []


async def test_mx_host_with_temporary_failure_is_skipped() -> None:
    dns = two_level().fail("mx.b.test", TEMPORARY, "addresses")
    assert hosts(await mail_hosts("b.test", dns, rng=rng())) == [("backup.b.test", "192.0.2.2")]


async def test_only_temporary_failures_defer() -> None:
    dns = two_level().fail("mx.b.test", TEMPORARY).fail("backup.b.test", DnsNoSuchDomain("nx"))
    result = failure(await mail_hosts("b.test", dns, rng=rng()))
    assert result.temporary
    assert result.reply.enhanced == "4.4.3"
    assert "SERVFAIL" in result.reply.text


async def test_mx_host_nxdomain_is_skipped_and_none_left_bounces() -> None:
    dns = StaticResolver().add_mx("b.test", 10, "gone.b.test").add_mx("b.test", 20, "mx2.b.test")
    dns.add_address("mx2.b.test", "192.0.2.5")
    assert hosts(await mail_hosts("b.test", dns, rng=rng())) == [("mx2.b.test", "192.0.2.5")]
    dns = StaticResolver().add_mx("b.test", 10, "gone.b.test")
    result = failure(await mail_hosts("b.test", dns, rng=rng()))
    assert (result.reply.code, result.reply.enhanced) == (550, "5.4.4")


async def test_mx_loop_by_name_when_most_preferred() -> None:
    dns = two_level()
    result = failure(await mail_hosts("b.test", dns, my_names={"MX.b.test"}, rng=rng()))
    assert (result.reply.code, result.reply.enhanced) == (554, "5.4.6")
    assert result.reply.text == "mail for b.test loops back to myself"
    assert dns.questions == [("mx", "b.test")]  # no host was looked up


async def test_mx_loop_by_name_discards_equal_and_worse_records() -> None:
    dns = two_level().add_mx("b.test", 20, "me.test").add_mx("b.test", 30, "worse.b.test")
    dns.add_address("worse.b.test", "192.0.2.30")
    result = await mail_hosts("b.test", dns, my_names={"me.test"}, rng=rng())
    assert hosts(result) == [("mx.b.test", "192.0.2.1"), ("mx.b.test", "2001:db8::1")]
    assert ("addresses", "backup.b.test") not in dns.questions


async def test_mx_loop_by_address_when_most_preferred() -> None:
    dns = two_level()
    result = await mail_hosts("b.test", dns, my_addresses={"2001:db8:0:0::1"}, rng=rng())
    assert failure(result).reply.text == "mail for b.test loops back to myself"
    assert ("addresses", "backup.b.test") not in dns.questions


async def test_mx_loop_by_address_keeps_more_preferred_hosts() -> None:
    dns = two_level().add_mx("b.test", 20, "alias-of-me.b.test")
    dns.add_address("alias-of-me.b.test", "198.51.100.1")
    dns.add_mx("b.test", 30, "worse.b.test").add_address("worse.b.test", "192.0.2.30")
    result = await mail_hosts("b.test", dns, my_addresses={"198.51.100.1"}, rng=rng())
    assert hosts(result) == [("mx.b.test", "192.0.2.1"), ("mx.b.test", "2001:db8::1")]
    assert ("addresses", "worse.b.test") not in dns.questions


async def test_loop_behind_temporary_failures_defers() -> None:
    dns = two_level().fail("mx.b.test", TEMPORARY)
    result = failure(await mail_hosts("b.test", dns, my_names={"backup.b.test"}, rng=rng()))
    assert result.temporary


async def test_addresses_are_capped_at_five_and_lookups_stop() -> None:
    dns = StaticResolver()
    for i, name in enumerate(("m1", "m2", "m3")):
        dns.add_mx("many.test", 10 * (i + 1), f"{name}.many.test")
        dns.add_address(f"{name}.many.test", *(f"192.0.2.{10 * i + j}" for j in range(3)))
    result = await mail_hosts("many.test", dns, rng=rng())
    assert isinstance(result, MailHosts)
    assert [t.address for t in result.targets] == [
        "192.0.2.0",
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.10",
        "192.0.2.11",
    ]
    assert ("addresses", "m3.many.test") not in dns.questions
    capped = await mail_hosts("many.test", dns, rng=rng(), max_addresses=1)
    assert hosts(capped) == [("m1.many.test", "192.0.2.0")]
    with pytest.raises(ValueError):
        await mail_hosts("many.test", dns, rng=rng(), max_addresses=0)


@pytest.mark.parametrize(
    ("literal", "address"),
    [
        ("[192.0.2.1]", "192.0.2.1"),
        ("[IPv6:2001:DB8::1]", "2001:db8::1"),
        ("[ipv6:2001:db8:0::2]", "2001:db8::2"),
    ],
)
async def test_address_literal_needs_no_dns(literal: str, address: str) -> None:
    dns = StaticResolver()
    result = await mail_hosts(literal, dns, rng=rng())
    assert isinstance(result, MailHosts)
    (target,) = result.targets
    assert (target.address, target.preference, target.port) == (address, 0, 25)
    assert target.host.startswith("[")
    assert dns.questions == []


async def test_address_literal_of_this_host_is_a_loop_and_bad_literal_bounces() -> None:
    dns = StaticResolver()
    looped = failure(await mail_hosts("[192.0.2.1]", dns, my_addresses={"192.0.2.1"}, rng=rng()))
    assert looped.reply.enhanced == "5.4.6"
    bad = failure(await mail_hosts("[300.1.1.1]", dns, rng=rng()))
    assert bad.reply.enhanced == "5.1.2"


# -- relay_hosts ---------------------------------------------------------------------


def route_hosts(value: str) -> tuple[RelayHost, ...]:
    table = parse_mailertable(f"route.test {value}\n", source="mailertable")
    route = table.lookup("route.test")
    assert route is not None
    return route.hosts


async def test_relay_bracketed_host_is_looked_up_without_mx() -> None:
    dns = StaticResolver().add_address("gw.test", "192.0.2.50").add_mx("gw.test", 10, "x.test")
    result = await relay_hosts(route_hosts("smtp:[gw.test]:2525"), dns, rng=rng())
    assert isinstance(result, MailHosts)
    assert result.targets == (MailTarget("gw.test", "192.0.2.50", 0, 2525),)
    assert dns.questions == [("addresses", "gw.test")]


async def test_relay_ip_literal_hosts_need_no_dns_and_take_the_default_port() -> None:
    dns = StaticResolver()
    result = await relay_hosts(
        route_hosts("relay:[10.1.1.1]:[IPv6:2001:db8::5]"), dns, rng=rng(), default_port=587
    )
    assert isinstance(result, MailHosts)
    assert [(t.address, t.port) for t in result.targets] == [
        ("10.1.1.1", 587),
        ("2001:db8::5", 587),
    ]
    assert dns.questions == []


async def test_relay_host_without_brackets_uses_its_mx() -> None:
    dns = two_level()
    result = await relay_hosts(route_hosts("esmtp:b.test:26"), dns, rng=rng())
    assert isinstance(result, MailHosts)
    assert [(t.host, t.port) for t in result.targets] == [
        ("mx.b.test", 26),
        ("mx.b.test", 26),
        ("backup.b.test", 26),
    ]


async def test_relay_fallback_hosts_in_order_and_failures_passed_over() -> None:
    dns = two_level().add_address("second.test", "192.0.2.60")
    result = await relay_hosts(
        route_hosts("esmtp:[gone.test]:[second.test]:b.test"), dns, rng=rng(), max_addresses=3
    )
    assert hosts(result) == [
        ("second.test", "192.0.2.60"),
        ("mx.b.test", "192.0.2.1"),
        ("mx.b.test", "2001:db8::1"),
    ]  # capped at 3 over all hosts


async def test_relay_failures_temporary_wins_else_first() -> None:
    dns = StaticResolver().fail("slow.test", TEMPORARY)
    result = failure(await relay_hosts(route_hosts("smtp:[gone.test]:[slow.test]"), dns, rng=rng()))
    assert result.temporary
    result = failure(await relay_hosts(route_hosts("smtp:[gone.test]:nomx.test"), dns, rng=rng()))
    assert result.reply.enhanced == "5.1.2"
    assert "gone.test" in result.reply.text


async def test_relay_to_this_host_is_a_loop() -> None:
    dns = StaticResolver().add_address("me.test", "192.0.2.99")
    for value in ("smtp:[me.test]", "smtp:[192.0.2.99]"):
        result = failure(
            await relay_hosts(route_hosts(value), dns, my_addresses={"192.0.2.99"}, rng=rng())
        )
        assert result.reply.enhanced == "5.4.6"


# -- StaticResolver ------------------------------------------------------------------


async def test_static_resolver_nxdomain_nodata_and_failures() -> None:
    dns = (
        StaticResolver()
        .add_mx("a.test.", 10, "MX.A.test.")
        .add_address("a.test", "::1", "127.0.0.1")
    )
    dns.add_txt("a.test", "v=spf1 -all")
    assert (await dns.mx("A.test")).records == (MxRecord(10, "mx.a.test"),)
    assert await dns.addresses("a.test") == AddressAnswer(("127.0.0.1", "::1"))
    assert await dns.txt("a.test") == ["v=spf1 -all"]
    dns.add_mx("only-mx.test", 10, "a.test")
    assert await dns.addresses("only-mx.test") == AddressAnswer(())  # NODATA
    with pytest.raises(DnsNoSuchDomain):
        await dns.mx("b.test")
    dns.fail("a.test", TEMPORARY, "txt")
    with pytest.raises(DnsTemporaryError):
        await dns.txt("a.test")
    assert (await dns.mx("a.test")).records  # other kinds still answer


async def test_relay_route_without_hosts_is_kept_as_a_configuration_fault() -> None:
    result = failure(await relay_hosts((), StaticResolver(), rng=rng()))
    assert (result.reply.code, result.reply.enhanced) == (451, "4.3.0")


async def test_without_dns_configuration_mail_waits_with_the_reason() -> None:
    result = await mail_hosts(
        "far.test", UnavailableResolver("no /etc/resolv.conf"), rng=random.Random(1)
    )
    assert isinstance(result, RouteFailure) and result.temporary
    assert result.reply.enhanced == "4.4.3" and "no /etc/resolv.conf" in result.reply.text
