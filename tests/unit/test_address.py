"""Address parsing and canonical form (RFC 5321 §4.1.2, RFC 6531 §3.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postoffice.core.address import (
    Address,
    canonical_domain,
    domain_matches,
    parent_domains,
    parse_address,
    quote_local,
)
from postoffice.core.errors import AddressError


@pytest.mark.parametrize(
    ("text", "local", "domain"),
    [
        ("alice@example.test", "alice", "example.test"),
        ("Alice@EXAMPLE.Test", "Alice", "example.test"),
        ("a.b+c@sub.example.test", "a.b+c", "sub.example.test"),
        ('"john doe"@example.test', "john doe", "example.test"),
        ('"a\\"b@c"@example.test', 'a"b@c', "example.test"),
        ("user@[192.0.2.1]", "user", "[192.0.2.1]"),
        ("user@[IPv6:2001:db8::0:1]", "user", "[IPv6:2001:db8::1]"),
        ("jörg@bücher.test", "jörg", "xn--bcher-kva.test"),
        ("x@example.test.", "x", "example.test"),
    ],
)
def test_parse_valid(text: str, local: str, domain: str) -> None:
    address = parse_address(text)
    assert address == Address(local, domain)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice",
        "@example.test",
        "alice@",
        "a..b@example.test",
        ".a@example.test",
        "a b@example.test",
        "alice@exa mple.test",
        "alice@-bad.test",
        "alice@[300.1.1.1]",
        "alice@[1.2.3.4",
        "al\nice@example.test",
        "a" * 256 + "@example.test",
        "alice@" + "a" * 256,
        '"unterminated@example.test',
    ],
)
def test_parse_invalid(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


def test_default_domain_completes_bare_name() -> None:
    assert parse_address("postmaster", default_domain="Example.Test") == Address(
        "postmaster", "example.test"
    )


def test_key_folds_local_part_only() -> None:
    address = parse_address("Alice.Smith@Example.TEST")
    assert address.key == "alice.smith@example.test"
    assert address.local == "Alice.Smith"


def test_render_quotes_when_needed() -> None:
    assert str(parse_address('"john doe"@example.test')) == '"john doe"@example.test'
    assert str(parse_address("plain@example.test")) == "plain@example.test"
    assert quote_local('a"b') == '"a\\"b"'


def test_split_detail() -> None:
    assert parse_address("bob+lists@x.test").split_detail() == ("bob", "lists")
    assert parse_address("bob@x.test").split_detail() == ("bob", None)
    assert parse_address("+x@x.test").split_detail() == ("+x", None)


def test_domain_helpers() -> None:
    assert domain_matches("a.example.test", "example.test")
    assert domain_matches("example.test", "example.test")
    assert not domain_matches("badexample.test", "example.test")
    assert parent_domains("a.b.test") == ["a.b.test", "b.test", "test"]
    assert canonical_domain("EXAMPLE.test") == "example.test"


@given(st.text(max_size=80))
def test_garbage_raises_only_address_error(text: str) -> None:
    try:
        address = parse_address(text)
    except AddressError:
        return
    # Whatever parses must render back into something that parses to the same value.
    assert parse_address(str(address)) == address


def test_fold_local_folds_ascii_case_and_unicode_form_only() -> None:
    from postoffice.core.address import fold_local

    assert fold_local("Alice") == "alice"
    # Composed and decomposed é are one key (NFC).
    assert fold_local("jos\u00e9") == fold_local("jose\u0301") == "jos\u00e9"
    # The Kelvin sign is canonically the letter K (NFC), so it reaches kate, as it should.
    assert fold_local("\u212aate") == "kate"
    # Non-ASCII letters keep their case: RFC 6531 defines no case rule for them.
    assert fold_local("\u00c9mile") == "\u00c9mile"
    assert fold_local("\u0130nci") == "\u0130nci"  # str.lower() would give "i\u0307nci"
