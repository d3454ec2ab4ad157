"""The QUOTA commands' grammar (RFC 9208 §4.1, §7): GETQUOTA, GETQUOTAROOT and
SETQUOTA whole, cut short byte by byte, with trailing data, and their refusals;
and the rendering of the QUOTA and QUOTAROOT responses."""

from __future__ import annotations

import pytest

from postoffice.protocol.imap.commands import Command, command_word
from postoffice.protocol.imap.quota_commands import (
    MAX_SETQUOTA_RESOURCES,
    GetQuota,
    GetQuotaRoot,
    SetQuota,
    quota_response,
    quotaroot_response,
)
from postoffice.protocol.imap.states import TRANSITIONS, ImapState
from tests.protocol.imap_parsing import (
    assert_cut_short_refused_or_different,
    assert_trailing_text_refused,
    parse,
    refused,
)

EXAMPLES: list[tuple[str, bytes, Command]] = [
    ("getquota-empty-root", b'G1 GETQUOTA ""\r\n', GetQuota("G1", "")),
    # RFC 9208 §4.1.1's example
    ("getquota-rfc", b'G0001 GETQUOTA "!partition/sda4"\r\n', GetQuota("G0001", "!partition/sda4")),
    ("getquota-atom", b"g getquota UserQuota\r\n", GetQuota("g", "UserQuota")),
    ("getquota-literal", b"g GETQUOTA {3+}\r\nabc\r\n", GetQuota("g", "abc")),
    # RFC 9208 §4.1.2's example
    ("getquotaroot-rfc", b"G0002 GETQUOTAROOT INBOX\r\n", GetQuotaRoot("G0002", "INBOX")),
    ("getquotaroot-inbox-case", b"a getquotaroot inbox\r\n", GetQuotaRoot("a", "INBOX")),
    ("getquotaroot-quoted", b'a GETQUOTAROOT "Sent Items"\r\n', GetQuotaRoot("a", "Sent Items")),
    (
        "getquotaroot-mutf7",
        b"a GETQUOTAROOT Entw&APw-rfe\r\n",
        GetQuotaRoot("a", "Entw\u00fcrfe"),
    ),
    # RFC 9208 §4.1.3's example
    (
        "setquota-rfc",
        b'S0000 SETQUOTA "" (STORAGE 512)\r\n',
        SetQuota("S0000", "", (("STORAGE", 512),)),
    ),
    (
        "setquota-two",
        b"s SETQUOTA root (storage 1 MESSAGE 9223372036854775807)\r\n",
        SetQuota("s", "root", (("STORAGE", 1), ("MESSAGE", 9223372036854775807))),
    ),
    ("setquota-empty-list", b'S SETQUOTA "" ()\r\n', SetQuota("S", "", ())),
]


@pytest.mark.parametrize(("wire", "expected"), [pytest.param(w, e, id=n) for n, w, e in EXAMPLES])
def test_quota_commands_parse(wire: bytes, expected: Command) -> None:
    assert parse(wire) == expected
    assert command_word(expected) == wire.split(b" ")[1].decode().upper()


@pytest.mark.parametrize("wire", [pytest.param(w, id=n) for n, w, _ in EXAMPLES])
def test_quota_commands_with_trailing_data_are_refused(wire: bytes) -> None:
    assert_trailing_text_refused(wire)
    for tail in (b" ", b" x", b")"):
        error = refused(wire[:-2] + tail + b"\r\n")
        assert (error.tag, error.status) == (parse(wire).tag, "BAD")


@pytest.mark.parametrize("wire", [pytest.param(w, id=n) for n, w, _ in EXAMPLES])
def test_quota_commands_cut_short_byte_by_byte(wire: bytes) -> None:
    assert_cut_short_refused_or_different(wire)


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(b"a GETQUOTA\r\n", id="getquota-no-root"),
        pytest.param(b"a GETQUOTA  x\r\n", id="getquota-two-spaces"),
        pytest.param(b"a GETQUOTA (x)\r\n", id="getquota-list"),
        pytest.param(b"a GETQUOTA a b\r\n", id="getquota-two-roots"),
        pytest.param(b'a GETQUOTA "\xff"\r\n', id="getquota-8bit"),
        pytest.param(b"a GETQUOTAROOT\r\n", id="getquotaroot-no-mailbox"),
        pytest.param(b"a GETQUOTAROOT a/../b\r\n", id="getquotaroot-bad-name"),
        pytest.param(b'a SETQUOTA ""\r\n', id="setquota-no-list"),
        pytest.param(b'a SETQUOTA "" STORAGE 1\r\n', id="setquota-no-parens"),
        pytest.param(b'a SETQUOTA "" (STORAGE)\r\n', id="setquota-no-limit"),
        pytest.param(b'a SETQUOTA "" (STORAGE -1)\r\n', id="setquota-negative"),
        pytest.param(b'a SETQUOTA "" (STORAGE 9223372036854775808)\r\n', id="setquota-past-64"),
        pytest.param(b'a SETQUOTA "" (STORAGE 1 )\r\n', id="setquota-space-before-paren"),
        pytest.param(b'a SETQUOTA "" ( STORAGE 1)\r\n', id="setquota-space-after-paren"),
        pytest.param(b'a UID GETQUOTA ""\r\n', id="uid-getquota"),
    ],
)
def test_malformed_quota_commands_are_bad(wire: bytes) -> None:
    error = refused(wire)
    assert (error.tag, error.status) == ("a", "BAD")


def test_setquota_list_is_bounded() -> None:
    """DESIGN.md §5: every input has a bound."""
    fits = b" ".join(b"R%d 1" % n for n in range(MAX_SETQUOTA_RESOURCES))
    assert len(parse(b'a SETQUOTA "" (' + fits + b")\r\n").limits) == MAX_SETQUOTA_RESOURCES  # type: ignore[attr-defined]
    error = refused(b'a SETQUOTA "" (' + fits + b" X 1)\r\n")
    assert "too many" in str(error)


@pytest.mark.parametrize("state", [ImapState.AUTHENTICATED, ImapState.SELECTED])
def test_quota_commands_are_allowed_after_login_only(state: ImapState) -> None:
    """RFC 9208 §4.1: valid in the authenticated and selected states."""
    for word in ("GETQUOTA", "GETQUOTAROOT", "SETQUOTA"):
        assert word in TRANSITIONS[state]
        assert word not in TRANSITIONS[ImapState.NOT_AUTHENTICATED]


def test_quota_response_rendering() -> None:
    """RFC 9208 §7 quota-response; a root name is always a string, "" included."""
    assert quota_response("", [("STORAGE", 10, 512)]) == b'* QUOTA "" (STORAGE 10 512)\r\n'
    assert (
        quota_response("", [("STORAGE", 0, 1), ("MESSAGE", 3, 100)])
        == b'* QUOTA "" (STORAGE 0 1 MESSAGE 3 100)\r\n'
    )
    with pytest.raises(ValueError):
        quota_response("", [])  # quota-list has at least one resource


def test_quotaroot_response_rendering() -> None:
    """RFC 9208 §7 quotaroot-response: the mailbox, then zero or more roots."""
    assert quotaroot_response(b"INBOX", [""]) == b'* QUOTAROOT INBOX ""\r\n'
    assert quotaroot_response(b'"Sent Items"', []) == b'* QUOTAROOT "Sent Items"\r\n'
