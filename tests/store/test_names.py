"""Mailbox name validation and the reversible disk encoding."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from postoffice.core.address import Address
from postoffice.core.errors import MailboxNameError
from postoffice.store import StoreLayout
from postoffice.store.names import (
    decode_component,
    encode_component,
    mailbox_name,
    parent_names,
    safe_domain,
    safe_local_part,
)


@pytest.mark.parametrize(
    ("given_name", "canonical"),
    [
        ("INBOX", "INBOX"),
        ("inbox", "INBOX"),
        ("InBoX/Sub", "INBOX/Sub"),
        ("Sub/inbox", "Sub/inbox"),
        ("a.b/c d", "a.b/c d"),
        ("Ünïcode/子", "Ünïcode/子"),
    ],
)
def test_canonical_names(given_name: str, canonical: str) -> None:
    assert mailbox_name(given_name) == canonical


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/",
        "/a",
        "a/",
        "a//b",
        ".",
        "..",
        "a/../b",
        "a/.",
        "x\x00",
        "x\x7f",
        "x\x85",
        "a*",
        "a%",
        " lead",
        "trail ",
        "a" * 201,
        "/".join("a" * 17),
        7,
        None,
        "\udc80",
    ],
)
def test_bad_names(bad: object) -> None:
    with pytest.raises(MailboxNameError):
        mailbox_name(bad)


def test_parents() -> None:
    assert parent_names("a/b/c") == ["a", "a/b"]
    assert parent_names("a") == []


_COMPONENT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/*%"),
    min_size=1,
    max_size=30,
).filter(lambda s: s not in (".", "..") and s == s.strip())


@given(_COMPONENT, st.booleans(), st.booleans())
def test_encoding_is_reversible_and_safe(component: str, maildir: bool, top: bool) -> None:
    encoded = encode_component(component, maildir=maildir, top_level=top)
    assert decode_component(encoded) == component
    assert "/" not in encoded and not encoded.startswith(".")
    if maildir:
        assert "." not in encoded
    else:
        assert not encoded.endswith(".lock")
        assert not (top and encoded.startswith("postoffice-"))


def test_decode_refuses_strays() -> None:
    with pytest.raises(MailboxNameError):
        decode_component("100%")
    with pytest.raises(MailboxNameError):
        decode_component("%FF")


def test_user_path_parts() -> None:
    assert safe_local_part("Alice.Smith+tag") == "alice.smith+tag"
    assert safe_domain("Example.TEST") == "example.test"
    for bad in ["", ".x", "a/b", "a..b", "a\x00", "a b", "a\\b"]:
        with pytest.raises(MailboxNameError):
            safe_local_part(bad)
    for bad in ["", ".", "..", "a/b", ".example", "a..b"]:
        with pytest.raises(MailboxNameError):
            safe_domain(bad)


@given(st.lists(_COMPONENT, min_size=1, max_size=4))
def test_layout_paths_stay_inside(parts: list[str]) -> None:
    try:
        name = mailbox_name("/".join(parts))
    except MailboxNameError:
        assume(False)  # too long: refused before any path exists
        return
    for fmt in ("maildir", "mbox"):
        layout = StoreLayout(Path("/data"), fmt, "example.test")
        user = layout.user(Address("alice", "example.test"))
        try:
            path = user.maildir_folder(name) if fmt == "maildir" else user.mbox_file(name)
        except MailboxNameError:
            continue  # too long for the file system: refused, not truncated
        assert user.contains(path)
        if fmt == "maildir" and name != "INBOX":
            assert path.parent == user.mail_dir and path.name.startswith(".")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mailbox format"):
        StoreLayout(Path("/data"), "mh", "example.test")  # type: ignore[arg-type]
