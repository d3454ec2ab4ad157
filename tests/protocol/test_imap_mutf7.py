"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3) and the server's name check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.mutf7 import (
    MAX_NAME_OCTETS,
    decode_mutf7,
    encode_mutf7,
    validate_mailbox_name,
)

JAPANESE = "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"


# --- the RFC's example and fixed cases ----------------------------------------


def test_rfc3501_example_decodes_to_the_japanese_name() -> None:
    # RFC 3501 §5.1.3: "~peter/mail/&U,BTFw-/&ZeVnLIqe-" is "~peter/mail/台北/日本語"
    assert decode_mutf7("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == JAPANESE


def test_rfc3501_example_encodes_to_the_rfc_wire_form() -> None:
    assert encode_mutf7(JAPANESE) == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("", ""),
        ("INBOX", "INBOX"),
        ("&", "&-"),
        ("a&b", "a&-b"),
        ("&&", "&-&-"),
        ("R\u00e9pertoire", "R&AOk-pertoire"),
        ("\u00e9", "&AOk-"),
        ("\u00e9&", "&AOk-&-"),
        ("\u00e9&\u00e9", "&AOk-&-&AOk-"),
        ("Entw\u00fcrfe", "Entw&APw-rfe"),
        ("\U0001f600", "&2D3eAA-"),  # a surrogate pair in one run
        ("\x00", "&AAA-"),  # the codec carries controls; validation refuses them
        ("\x7f", "&AH8-"),
        ("~+/\\ %*", "~+/\\ %*"),  # printable ASCII other than "&" is itself
    ],
)
def test_fixed_names_encode_and_decode(name: str, wire: str) -> None:
    assert encode_mutf7(name) == wire
    assert decode_mutf7(wire) == name


def test_a_run_of_non_ascii_is_one_shift_not_one_per_character() -> None:
    wire = encode_mutf7("\u65e5\u672c\u8a9e")
    assert wire.count("&") == 1 and wire.endswith("-")


def test_encoding_a_lone_surrogate_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        encode_mutf7("a\ud800b")


# --- invalid wire forms -------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        ("&U,BTFw", "not closed"),  # "&" shift without "-"
        ("abc&", "not closed"),
        ("&U,BT=w-", "bad character"),  # "=" is not modified BASE64
        ("&U/BTFw-", "bad character"),  # "/" is standard BASE64, not modified
        ("&A-", "end cleanly"),  # one sextet: no whole UTF-16 unit
        ("&AO-", "end cleanly"),  # 12 bits: leftover too long
        ("&AOl-", "end cleanly"),  # 24 bits: 8 leftover bits
        ("&AOm-", "end cleanly"),  # "&AOk-" with non-zero leftover bits
        ("&AEE-", "printable ASCII"),  # "A" encoded
        ("&ACY-", "printable ASCII"),  # "&" encoded instead of "&-"
        ("&ACA-", "printable ASCII"),  # space encoded
        ("&AOk-&AOk-", "adjacent"),  # RFC 3501 §5.1.3: "&...-&...-" forbidden
        ("&2D0-", "surrogate"),  # high surrogate alone
        ("&3gA-", "surrogate"),  # low surrogate alone
        ("&2D3YPQ-", "surrogate"),  # high followed by high
        ("&2D0AQQ-", "surrogate"),  # high followed by a non-surrogate
        ("R\u00e9pertoire", "outside printable ASCII"),  # raw 8-bit in mUTF-7
        ("a\tb", "outside printable ASCII"),
        ("a\x7fb", "outside printable ASCII"),
    ],
)
def test_invalid_modified_utf7_is_rejected(wire: str, why: str) -> None:
    with pytest.raises(ImapSyntaxError, match=why):
        decode_mutf7(wire)


def test_a_literal_ampersand_between_runs_is_not_adjacent_runs() -> None:
    assert decode_mutf7("&AOk-&-&APw-") == "\u00e9&\u00fc"


def test_runs_separated_by_ascii_are_fine() -> None:
    assert decode_mutf7("&AOk-x&APw-") == "\u00e9x\u00fc"


# --- properties ---------------------------------------------------------------


@given(st.text())
def test_encode_then_decode_is_identity(name: str) -> None:
    wire = encode_mutf7(name)
    assert wire.isascii()
    assert all(0x20 <= ord(c) <= 0x7E for c in wire)
    assert decode_mutf7(wire) == name


@given(st.text())
def test_the_encoding_is_canonical(name: str) -> None:
    # the decoder accepts only the encoder's output: decode then encode is identity
    try:
        decoded = decode_mutf7(name)
    except ImapSyntaxError:
        return
    assert encode_mutf7(decoded) == name


@given(st.text(alphabet=st.sampled_from("&-AOkU,BTFw+/2D3eZ\u00e9 x"), max_size=30))
def test_mutf7_shaped_garbage_only_raises_syntax_errors(wire: str) -> None:
    try:
        decoded = decode_mutf7(wire)
    except ImapSyntaxError as exc:
        assert str(exc)
    else:
        assert encode_mutf7(decoded) == wire


@given(st.text())
def test_arbitrary_text_only_raises_syntax_errors(wire: str) -> None:
    try:
        decoded = decode_mutf7(wire)
    except ImapSyntaxError as exc:
        assert str(exc).startswith("invalid modified UTF-7")
    else:
        assert encode_mutf7(decoded) == wire


# --- validate_mailbox_name ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("INBOX", "INBOX"),
        ("inbox", "INBOX"),
        ("InBoX", "INBOX"),
        ("inbox/foo", "INBOX/foo"),
        ("Inbox/Sub/inbox", "INBOX/Sub/inbox"),  # only the first component
        ("inboxes", "inboxes"),
        ("Archive/inbox", "Archive/inbox"),
        ("Sent", "Sent"),
        ("a.b/.hidden/x..y", "a.b/.hidden/x..y"),
        ("Entw\u00fcrfe/2026", "Entw\u00fcrfe/2026"),
        ("~peter/mail/\u53f0\u5317", "~peter/mail/\u53f0\u5317"),
        ("a&b", "a&b"),
        ("with space", "with space"),
        ("x" * MAX_NAME_OCTETS, "x" * MAX_NAME_OCTETS),
    ],
)
def test_valid_names_pass_and_inbox_is_normalised(name: str, expected: str) -> None:
    assert validate_mailbox_name(name) == expected


def test_inbox_is_compared_in_ascii_only() -> None:
    # U+0131 (dotless i) upper-cases to "I" but is not the ASCII name INBOX
    assert validate_mailbox_name("\u0131nbox") == "\u0131nbox"


def test_another_delimiter_is_honoured() -> None:
    assert validate_mailbox_name("inbox.Sent", delimiter=".") == "INBOX.Sent"
    assert validate_mailbox_name("a/b", delimiter=".") == "a/b"
    with pytest.raises(ImapSyntaxError, match="doubled"):
        validate_mailbox_name("a..b", delimiter=".")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("x" * (MAX_NAME_OCTETS + 1), "longer"),
        ("\u00e9" * (MAX_NAME_OCTETS // 2 + 1), "longer"),  # counted in octets
        ("a\x00b", "control"),
        ("a\tb", "control"),
        ("a\rb", "control"),
        ("a\nb", "control"),
        ("a\x1fb", "control"),
        ("a\x7fb", "control"),
        ("a\x80b", "control"),
        ("a\x9fb", "control"),
        ("a\\b", '"\\\\"'),
        ("a*", r'"\*"'),
        ("a%", '"%"'),
        ("/foo", "starts with"),
        ("foo/", "ends with"),
        ("/", "starts with"),
        ("foo//bar", "doubled"),
        (".", '"\\." component'),
        ("..", '"\\.\\." component'),
        ("foo/../bar", '"\\.\\." component'),
        ("foo/./bar", '"\\." component'),
        ("foo/..", '"\\.\\." component'),
        ("a\ud800", "not valid Unicode"),
    ],
)
def test_invalid_names_are_refused(name: str, why: str) -> None:
    with pytest.raises(ImapSyntaxError, match=why):
        validate_mailbox_name(name)


def test_the_delimiter_is_one_character() -> None:
    with pytest.raises(ValueError, match="one character"):
        validate_mailbox_name("a", delimiter="")


@given(st.text(max_size=40))
def test_validation_only_raises_syntax_errors_and_its_result_is_stable(name: str) -> None:
    try:
        valid = validate_mailbox_name(name)
    except ImapSyntaxError as exc:
        assert str(exc).startswith("mailbox name")
    else:
        assert validate_mailbox_name(valid) == valid
        assert len(valid) == len(name)
