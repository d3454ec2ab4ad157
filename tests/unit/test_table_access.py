"""The access table: keys, actions, errors and sendmail's lookup order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postoffice.core.address import parse_address
from postoffice.core.errors import TableError
from postoffice.core.reply import Reply
from postoffice.directory.tables.access import (
    AccessAction,
    AccessKeyKind,
    AccessTable,
    AccessTag,
    parse_access,
    parse_access_key,
)
from postoffice.directory.tables.lines import flatten_errors

SOURCE = "/etc/mail/access"


def table(text: str) -> AccessTable:
    return parse_access(text, source=SOURCE)


def line_of(rule: object) -> int | None:
    return None if rule is None else rule.origin.line  # type: ignore[attr-defined]


# -- keys -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "tag", "kind", "key"),
    [
        ("Connect:192.168.1", AccessTag.CONNECT, AccessKeyKind.NETWORK, "192.168.1.0/24"),
        ("Connect:10", AccessTag.CONNECT, AccessKeyKind.NETWORK, "10.0.0.0/8"),
        ("Connect:192.0.2.7", AccessTag.CONNECT, AccessKeyKind.NETWORK, "192.0.2.7/32"),
        ("connect:192.168.0.0/16", AccessTag.CONNECT, AccessKeyKind.NETWORK, "192.168.0.0/16"),
        (
            "Connect:IPv6:2002:c0a8:02c7",
            AccessTag.CONNECT,
            AccessKeyKind.NETWORK,
            "2002:c0a8:2c7::/48",
        ),
        (
            "Connect:IPv6:2002:c0a8:51d2::23f4",
            AccessTag.CONNECT,
            AccessKeyKind.NETWORK,
            "2002:c0a8:51d2::23f4/128",
        ),
        ("Connect:Mail.Example.TEST", AccessTag.CONNECT, AccessKeyKind.HOST, "mail.example.test"),
        ("Connect:[127.0.0.3]", AccessTag.CONNECT, AccessKeyKind.HOST, "[127.0.0.3]"),
        ("From:Spammer@AOL.com", AccessTag.FROM, AccessKeyKind.ADDRESS, "spammer@aol.com"),
        (
            "From:FREE.STEALTH.MAILER@",
            AccessTag.FROM,
            AccessKeyKind.LOCAL_PART,
            "free.stealth.mailer@",
        ),
        ("From:<>", AccessTag.FROM, AccessKeyKind.NULL_SENDER, "<>"),
        ("TO:partner.test", AccessTag.TO, AccessKeyKind.HOST, "partner.test"),
        ("cyberspammer.com", None, AccessKeyKind.HOST, "cyberspammer.com"),
        ("spammer@aol.com", None, AccessKeyKind.ADDRESS, "spammer@aol.com"),
        ("IPv6:2001:db8", None, AccessKeyKind.NETWORK, "2001:db8::/32"),
    ],
)
def test_access_keys(written: str, tag: AccessTag | None, kind: AccessKeyKind, key: str) -> None:
    parsed = parse_access_key(written)
    assert (parsed.tag, parsed.kind, parsed.key) == (tag, kind, key)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Spam:abuse@ FRIEND", "unknown tag"),
        ("Connect: OK", "empty key"),
        ("Connect:user@example.test OK", "cannot be used with Connect"),
        ("To:<> OK", "cannot be used with To"),
        ("Connect:300.1.1 OK", "invalid IPv4"),
        ("Connect:192.168.1.0/33 OK", "invalid IPv4"),
        ("Connect:IPv6:zz99 OK", "invalid IPv6"),
        ("From:bad..domain OK", "invalid domain"),
        ("From:.example.test OK", "leading dot"),
        ("From:a@b@ OK", "invalid"),
        ("example.test PERMIT", "unknown action"),
        ("example.test ERROR:250 fine", "not an error"),
        ("example.test ERROR:5.7.1:450 mismatch", "does not match"),
        ("From:someone@example.test SKIP", "SKIP can only be used"),
        ("example.test", "has no value"),
    ],
)
def test_access_errors_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(TableError, match=message) as caught:
        table(f"# access\n{line}\n")
    assert f"{SOURCE}:2:" in str(caught.value)


def test_duplicate_keys_are_refused_with_both_lines() -> None:
    with pytest.raises(TableError, match=rf"{SOURCE}:3: duplicate key .*first at {SOURCE}:1"):
        table("From:a.test REJECT\nTo:a.test OK\nFrom:A.TEST OK\n")


def test_every_bad_line_is_reported() -> None:
    with pytest.raises(TableError) as caught:
        table("a.test PERMIT\nb.test OK\nc.test DENY\n")
    lines = [error.line for error in flatten_errors(caught.value)]
    assert lines == [1, 3]


# -- actions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "action", "reply"),
    [
        ("OK", AccessAction.OK, None),
        ("relay", AccessAction.RELAY, None),
        ("REJECT", AccessAction.REJECT, Reply(550, "5.7.1", "Access denied")),
        ("DISCARD", AccessAction.DISCARD, None),
        ("SKIP", AccessAction.SKIP, None),
        ("ERROR:5.7.1:550 Go away", AccessAction.ERROR, Reply(550, "5.7.1", "Go away")),
        ("ERROR:550 Go away", AccessAction.ERROR, Reply(550, "5.0.0", "Go away")),
        (
            'ERROR:"550 We don\'t accept mail"',
            AccessAction.ERROR,
            Reply(550, "5.0.0", "We don't accept mail"),
        ),
        ("ERROR:4.2.2:450 mailbox full", AccessAction.ERROR, Reply(450, "4.2.2", "mailbox full")),
    ],
)
def test_access_actions(value: str, action: AccessAction, reply: Reply | None) -> None:
    rule = table(f"example.test {value}\n").rules[0]
    assert (rule.action, rule.reply) == (action, reply)


# -- lookups ----------------------------------------------------------------


def test_connect_longest_ip_prefix_wins() -> None:
    access = table(
        "Connect:128.32 RELAY\nConnect:128.32.2 SKIP\nConnect:128.32.2.9 REJECT\n"
        "Connect:10.0.0.0/8 OK\n"
    )
    assert line_of(access.check_connect("128.32.7.1")) == 1
    assert line_of(access.check_connect("128.32.2.9")) == 3
    assert line_of(access.check_connect("10.9.8.7")) == 4
    assert access.check_connect("192.0.2.1") is None
    # SKIP ends the search without a decision (cf/README): the /16 RELAY is not used.
    skipped = access.check_connect("128.32.2.1")
    assert skipped is not None and skipped.action is AccessAction.SKIP


def test_connect_ipv6_prefixes_and_mapped_addresses() -> None:
    access = table("Connect:IPv6:2002:c0a8:02c7 RELAY\nConnect:192.0.2 REJECT\n")
    assert line_of(access.check_connect("2002:c0a8:2c7::1")) == 1
    assert access.check_connect("2002:c0a8:2c8::1") is None
    assert line_of(access.check_connect("::ffff:192.0.2.5")) == 2


def test_connect_host_name_before_address_and_parent_domains() -> None:
    access = table("Connect:spam.test REJECT\nConnect:192.0.2 RELAY\nConnect:[198.51.100.1] OK\n")
    assert line_of(access.check_connect("192.0.2.1", "mx.spam.test")) == 1
    assert line_of(access.check_connect("192.0.2.1", "mx.good.test")) == 2
    assert line_of(access.check_connect("198.51.100.1")) == 3
    assert access.check_connect("not-an-ip") is None


def test_tagged_key_beats_bare_key_of_same_specificity_but_not_a_more_specific_bare() -> None:
    access = table("example.test REJECT\nFrom:example.test OK\nbob@example.test DISCARD\n")
    sender = parse_address("alice@example.test")
    assert line_of(access.check_from(sender)) == 2
    assert line_of(access.check_to(sender)) == 1
    assert line_of(access.check_from(parse_address("bob@example.test"))) == 3


def test_address_lookup_order() -> None:
    access = table(
        "From:good@another.dom OK\nFrom:another.dom REJECT\nFrom:postmaster@ OK\n"
        "From:spammer@aol.test REJECT\n"
    )
    assert line_of(access.check_from(parse_address("good@another.dom"))) == 1
    assert line_of(access.check_from(parse_address("bad@sub.another.dom"))) == 2
    # the domain is tried before user@ (sendmail LookUpAddress)
    assert line_of(access.check_from(parse_address("postmaster@another.dom"))) == 2
    assert line_of(access.check_from(parse_address("postmaster@else.test"))) == 3
    # a detail does not dodge the rule
    assert line_of(access.check_from(parse_address("spammer+x@aol.test"))) == 4
    assert access.check_from(parse_address("nobody@else.test")) is None


def test_null_sender_and_address_literals() -> None:
    access = table("From:<> REJECT\nTo:[192.0.2.1] OK\n")
    assert line_of(access.check_from(None)) == 1
    assert line_of(access.check_to(parse_address("x@[192.0.2.1]"))) == 2
    assert table("").check_from(None) is None


def test_summary_counts_tags() -> None:
    access = table("Connect:10 OK\nFrom:a.test OK\nTo:b.test OK\nc.test OK\n")
    assert access.summary() == "4 rules (1 Connect:, 1 From:, 1 To:, 1 untagged)"


@given(st.text(max_size=80))
def test_access_key_garbage_only_raises_value_error(written: str) -> None:
    try:
        key = parse_access_key(written)
    except ValueError:
        return
    assert key.key  # whatever parses has a canonical, non-empty key
    assert key.kind in AccessKeyKind


@given(
    st.text(
        alphabet=st.sampled_from('CnetFromT:.@<>[]/0123456789abcdefIPv6 \t\n#OKREJCT"ERROR'),
        max_size=120,
    )
)
def test_access_file_garbage_only_raises_table_error(text: str) -> None:
    try:
        parse_access(text, source=SOURCE)
    except TableError as exc:
        assert f"{SOURCE}:" in str(exc)


def test_a_scoped_ipv6_client_matches_its_address_rules() -> None:
    # A link-local peer reported with its zone ("fe80::1%eth0") is the same host.
    access = table("Connect:IPv6:fe80::1 REJECT\nConnect:IPv6:fe80 OK\n")
    assert line_of(access.check_connect("fe80::1%eth0")) == 1
    assert line_of(access.check_connect("[IPv6:fe80::1%eth0]")) == 1
    assert line_of(access.check_connect("[ipv6:FE80::1]")) == 1
