"""DKIM signing (RFC 6376): every signature checked by dkimpy's verifier, DNS served locally."""

from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from postoffice.mailauth import dkim_sign
from postoffice.mailauth.dkim_sign import (
    DkimError,
    DkimSigner,
    dns_txt_record,
    generate_key,
    headers_to_sign,
    key_file,
    with_crlf,
)

SELECTOR = "postoffice"
DOMAIN = "example.test"

MINIMAL = b"From: alice@example.test\r\n\r\nHello.\r\n"
FULL = (
    b"Return-Path: <alice@example.test>\r\n"
    b"Received: from client.test by mail.example.test; Mon, 3 Mar 2025 10:00:00 +0000\r\n"
    b"From: Alice <alice@example.test>\r\n"
    b"Sender: alice@example.test\r\n"
    b"Reply-To: team@example.test\r\n"
    b"To: Bob <bob@other.test>,\r\n"
    b"\tCarol <carol@other.test>\r\n"
    b"Cc: dave@other.test\r\n"
    b"Subject: Quarterly   report\r\n"
    b"Date: Mon, 3 Mar 2025 10:00:00 +0000\r\n"
    b"Message-ID: <1234@example.test>\r\n"
    b"In-Reply-To: <1000@other.test>\r\n"
    b"References: <999@other.test> <1000@other.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"X-Mailer: test\r\n"
    b"\r\n"
    b"Caf\xc3\xa9 \xe2\x82\xac 100   \r\n"
    b"\r\n"
    b".leading dot and trailing space \r\n"
    b"\r\n\r\n"
)
EIGHT_BIT = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.test>\r\n"
    b"To: bob@other.test\r\n"
    b"Subject: Gr\xc3\xbc\xc3\x9fe\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Gr\xfc\xdfe aus K\xf6ln \xff\xfe\r\n"
)
NO_BODY = b"From: alice@example.test\r\nSubject: empty\r\n\r\n"
TWO_TO = b"From: a@example.test\r\nTo: b@other.test\r\nTo: c@other.test\r\n\r\nx\r\n"
MESSAGES = {
    "minimal": MINIMAL,
    "full": FULL,
    "eight-bit": EIGHT_BIT,
    "no-body": NO_BODY,
    "two-to": TWO_TO,
}

DnsFunc = Callable[..., bytes | None]


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key directory with a key for example.test, made once for the module."""
    directory = tmp_path_factory.mktemp("dkim")
    generate_key(directory, DOMAIN)
    return directory


@pytest.fixture
def signer(keys_dir: Path) -> DkimSigner:
    return DkimSigner(keys_dir, SELECTOR)


def dns_for(records: dict[str, str]) -> DnsFunc:
    """A dkimpy dnsfunc answering TXT queries from ``records`` (name -> value), no network."""

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        value = records.get(name.decode("ascii").lower().rstrip("."))
        return value.encode("ascii") if value is not None else None

    return lookup


def published(keys_dir: Path, domain: str = DOMAIN) -> DnsFunc:
    record = dns_txt_record(key_file(keys_dir, domain))
    return dns_for({f"{SELECTOR}._domainkey.{domain}": record})


def tags(field: bytes) -> dict[str, str]:
    value = field.decode("ascii").split(":", 1)[1]
    unfolded = re.sub(r"\s+", "", value)
    return dict(tag.split("=", 1) for tag in unfolded.split(";") if tag)


def signed(signer: DkimSigner, message: bytes, domain: str = DOMAIN) -> tuple[bytes, bytes]:
    field = signer.sign(message, domain)
    assert field is not None
    return field, field + with_crlf(message)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_signatures_verify(name: str, signer: DkimSigner, keys_dir: Path) -> None:
    _, message = signed(signer, MESSAGES[name])
    assert dkim.verify(message, dnsfunc=published(keys_dir))


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_lf_only_messages_are_signed_as_sent_with_crlf(
    name: str, signer: DkimSigner, keys_dir: Path
) -> None:
    lf_only = MESSAGES[name].replace(b"\r\n", b"\n")
    field = signer.sign(lf_only, DOMAIN)
    assert field is not None
    assert field == with_crlf(field)  # the field itself is CRLF throughout
    assert dkim.verify(field + MESSAGES[name], dnsfunc=published(keys_dir))
    assert dkim.verify(field + with_crlf(lf_only), dnsfunc=published(keys_dir))


def test_the_field_is_folded_with_crlf(signer: DkimSigner) -> None:
    field, _ = signed(signer, FULL)
    assert field.startswith(b"DKIM-Signature: ")
    assert field.endswith(b"\r\n")
    lines = field.split(b"\r\n")[:-1]
    assert len(lines) > 1
    assert all(line[:1] in (b" ", b"\t") for line in lines[1:])  # continuation lines
    assert all(len(line) <= 78 for line in lines)  # RFC 5322 §2.1.1
    assert b"\n" not in field.replace(b"\r\n", b"")


def test_the_tags(signer: DkimSigner) -> None:
    field, _ = signed(signer, FULL)
    found = tags(field)
    assert found["v"] == "1"
    assert found["a"] == "rsa-sha256"
    assert found["c"] == "relaxed/relaxed"
    assert found["d"] == DOMAIN
    assert found["s"] == SELECTOR
    assert "l" not in found  # no body length: an appended body must not verify


def test_signed_headers_are_those_present_with_singletons_oversigned(signer: DkimSigner) -> None:
    field, _ = signed(signer, FULL)
    signed_names = tags(field)["h"].split(":")
    assert signed_names.count("from") == 2
    for name in ("sender", "reply-to", "to", "cc", "subject", "date", "message-id"):
        assert signed_names.count(name) == 2, name
    for name in ("in-reply-to", "references", "mime-version", "content-type"):
        assert signed_names.count(name) == 2, name
    assert "content-transfer-encoding" in signed_names
    for name in ("received", "return-path", "x-mailer", "dkim-signature", "list-id"):
        assert name not in signed_names  # RFC 6376 §5.4.1: trace fields are not signed


def test_absent_optional_headers_are_not_signed(signer: DkimSigner) -> None:
    field, _ = signed(signer, MINIMAL)
    assert tags(field)["h"].split(":") == ["from", "from"]


def test_repeated_fields_are_signed_once_each() -> None:
    assert headers_to_sign(["from", "received", "received", "x-list"]) == ["from", "from"]
    assert headers_to_sign(["list-post", "from", "list-post"]) == [
        "from",
        "from",
        "list-post",
        "list-post",
    ]


def test_a_tampered_body_fails(signer: DkimSigner, keys_dir: Path) -> None:
    _, message = signed(signer, FULL)
    tampered = message.replace(b"100", b"900")
    assert tampered != message
    assert not dkim.verify(tampered, dnsfunc=published(keys_dir))


def test_an_appended_body_fails(signer: DkimSigner, keys_dir: Path) -> None:
    _, message = signed(signer, MINIMAL)
    assert not dkim.verify(message + b"Click here.\r\n", dnsfunc=published(keys_dir))


def test_a_tampered_subject_fails(signer: DkimSigner, keys_dir: Path) -> None:
    _, message = signed(signer, FULL)
    tampered = message.replace(b"Subject: Quarterly", b"Subject: Urgent")
    assert tampered != message
    assert not dkim.verify(tampered, dnsfunc=published(keys_dir))


@pytest.mark.parametrize("added", [b"From: mallory@evil.test\r\n", b"Subject: Pay now\r\n"])
def test_an_added_singleton_fails(added: bytes, signer: DkimSigner, keys_dir: Path) -> None:
    field, message = signed(signer, FULL)
    head, _, body = message[len(field) :].partition(b"\r\n\r\n")
    tampered = field + head + b"\r\n" + added + b"\r\n" + body
    assert not dkim.verify(tampered, dnsfunc=published(keys_dir))


def test_relaxed_canonicalisation_survives_rewrapping(signer: DkimSigner, keys_dir: Path) -> None:
    _, message = signed(signer, FULL)
    rewrapped = message.replace(b"Subject: Quarterly   report", b"SUBJECT:Quarterly\r\n report")
    rewrapped = rewrapped.replace(b"100   \r\n", b"100\r\n")
    assert rewrapped != message
    assert dkim.verify(rewrapped, dnsfunc=published(keys_dir))


def test_another_key_does_not_verify(signer: DkimSigner, tmp_path: Path) -> None:
    _, message = signed(signer, FULL)
    generate_key(tmp_path, DOMAIN)
    assert not dkim.verify(message, dnsfunc=published(tmp_path))


def test_the_domain_is_canonical(signer: DkimSigner, keys_dir: Path) -> None:
    assert signer.can_sign("Example.TEST")
    field, message = signed(signer, MINIMAL, "Example.TEST.")
    assert tags(field)["d"] == DOMAIN
    assert dkim.verify(message, dnsfunc=published(keys_dir))


def test_no_key_no_signature(signer: DkimSigner) -> None:
    assert not signer.can_sign("other.test")
    assert signer.sign(MINIMAL, "other.test") is None


@pytest.mark.parametrize("domain", ["[192.0.2.1]", "", "bad..domain", "../example.test", "a/b"])
def test_what_is_not_a_domain_has_no_key(signer: DkimSigner, domain: str) -> None:
    assert not signer.can_sign(domain)
    assert signer.sign(MINIMAL, domain) is None


def test_a_message_without_from_is_an_error(signer: DkimSigner) -> None:
    with pytest.raises(DkimError, match="From"):
        signer.sign(b"To: bob@other.test\r\nSubject: x\r\n\r\nbody\r\n", DOMAIN)


def test_a_malformed_header_is_an_error(signer: DkimSigner) -> None:
    with pytest.raises(DkimError, match=r"example\.test"):
        signer.sign(b"From: a@example.test\r\nnot a header line\r\n\r\nbody\r\n", DOMAIN)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage\n",
        b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    ],
)
def test_a_corrupt_key_is_an_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "broken.test.key").write_bytes(content)
    signer = DkimSigner(tmp_path, SELECTOR)
    assert signer.can_sign("broken.test")
    with pytest.raises(DkimError, match=r"broken\.test\.key"):
        signer.sign(MINIMAL, "broken.test")
    with pytest.raises(DkimError, match=r"broken\.test\.key"):
        dns_txt_record(tmp_path / "broken.test.key")


def test_a_key_that_is_not_rsa_is_an_error(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "ec.test.key").write_bytes(pem)
    with pytest.raises(DkimError, match="RSA"):
        DkimSigner(tmp_path, SELECTOR).sign(MINIMAL, "ec.test")


def test_a_repaired_key_is_used(tmp_path: Path) -> None:
    path = tmp_path / "example.test.key"
    path.write_bytes(b"garbage\n")
    signer = DkimSigner(tmp_path, SELECTOR)
    with pytest.raises(DkimError):
        signer.sign(MINIMAL, DOMAIN)
    generate_key(tmp_path, DOMAIN, replace=True)
    _, message = signed(signer, MINIMAL)
    assert dkim.verify(message, dnsfunc=published(tmp_path))


def test_a_replaced_key_is_read_again(tmp_path: Path) -> None:
    generate_key(tmp_path, DOMAIN)
    old_dns = published(tmp_path)
    signer = DkimSigner(tmp_path, SELECTOR)
    _, before = signed(signer, MINIMAL)
    assert dkim.verify(before, dnsfunc=old_dns)
    generate_key(tmp_path, DOMAIN, replace=True)
    new_dns = published(tmp_path)
    _, after = signed(signer, MINIMAL)
    assert dkim.verify(after, dnsfunc=new_dns)
    assert not dkim.verify(after, dnsfunc=old_dns)


def test_a_key_rewritten_in_place_is_read_again(tmp_path: Path, keys_dir: Path) -> None:
    path = generate_key(tmp_path, DOMAIN)
    signer = DkimSigner(tmp_path, SELECTOR)
    signed(signer, MINIMAL)
    before = path.stat()
    path.write_bytes(key_file(keys_dir, DOMAIN).read_bytes())  # same inode, new content
    # A later modification time, whatever the file system's clock granularity.
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert path.stat().st_ino == before.st_ino
    _, message = signed(signer, MINIMAL)
    assert dkim.verify(message, dnsfunc=published(keys_dir))


def test_a_removed_key_stops_signing(tmp_path: Path) -> None:
    path = generate_key(tmp_path, DOMAIN)
    signer = DkimSigner(tmp_path, SELECTOR)
    signed(signer, MINIMAL)
    path.unlink()
    assert not signer.can_sign(DOMAIN)
    assert signer.sign(MINIMAL, DOMAIN) is None


def test_an_unchanged_key_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate_key(tmp_path, DOMAIN)
    reads: list[Path] = []
    real = dkim_sign._read_private_key

    def counting(path: Path) -> object:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(dkim_sign, "_read_private_key", counting)
    signer = DkimSigner(tmp_path, SELECTOR)
    for _ in range(3):
        signed(signer, MINIMAL)
    assert reads == [tmp_path / "example.test.key"]


def test_the_key_file(tmp_path: Path) -> None:
    keys = tmp_path / "etc" / "dkim"
    path = generate_key(keys, "Example.Test")
    assert path == keys / "example.test.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert [p.name for p in keys.iterdir()] == ["example.test.key"]  # no temporary left
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert getattr(key, "key_size", None) == 2048


def test_generate_key_refuses_to_overwrite(tmp_path: Path) -> None:
    path = generate_key(tmp_path, DOMAIN)
    before = path.read_bytes()
    with pytest.raises(DkimError, match="exists already"):
        generate_key(tmp_path, DOMAIN)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["example.test.key"]
    generate_key(tmp_path, DOMAIN, replace=True)
    assert path.read_bytes() != before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["example.test.key"]


def test_generate_key_reports_what_it_cannot_write(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(DkimError, match="cannot make the DKIM key folder"):
        generate_key(not_a_folder, DOMAIN)
    with pytest.raises(DkimError, match="cannot make the DKIM key folder"):
        generate_key(not_a_folder / "sub", DOMAIN)


def test_generate_key_ignores_a_stale_temporary(tmp_path: Path) -> None:
    stale = tmp_path / f".example.test.key.{os.getpid()}.tmp"
    stale.write_bytes(b"half a key")
    path = generate_key(tmp_path, DOMAIN)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert dns_txt_record(path).startswith("v=DKIM1; k=rsa; p=")


def test_generate_key_sizes(tmp_path: Path) -> None:
    path = generate_key(tmp_path, "small.test", bits=1024)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert getattr(key, "key_size", None) == 1024
    for bits in (512, 1023, 8192):
        with pytest.raises(DkimError, match="key size"):
            generate_key(tmp_path, "other.test", bits=bits)


@pytest.mark.parametrize("domain", ["[192.0.2.1]", "bad..domain", "../x"])
def test_generate_key_needs_a_domain(tmp_path: Path, domain: str) -> None:
    with pytest.raises(DkimError, match="not a signing domain"):
        generate_key(tmp_path, domain)
    assert list(tmp_path.iterdir()) == []


def test_the_dns_record(keys_dir: Path) -> None:
    path = key_file(keys_dir, DOMAIN)
    record = dns_txt_record(path)
    prefix = "v=DKIM1; k=rsa; p="
    assert record.startswith(prefix)
    der = base64.b64decode(record[len(prefix) :], validate=True)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert der == public


def test_the_dns_record_of_a_missing_key(tmp_path: Path) -> None:
    with pytest.raises(DkimError, match="no such DKIM key"):
        dns_txt_record(tmp_path / "none.test.key")


@pytest.mark.parametrize("selector", ["", "-x", "a b", "s_1", "x.", "sel\u00e9"])
def test_a_bad_selector_is_refused(tmp_path: Path, selector: str) -> None:
    with pytest.raises(DkimError, match="selector"):
        DkimSigner(tmp_path, selector)


def test_a_dotted_selector(keys_dir: Path) -> None:
    signer = DkimSigner(keys_dir, "2025.mail")
    field, message = signed(signer, MINIMAL)
    record = dns_txt_record(key_file(keys_dir, DOMAIN))
    lookup = dns_for({f"2025.mail._domainkey.{DOMAIN}": record})
    assert tags(field)["s"] == "2025.mail"
    assert dkim.verify(message, dnsfunc=lookup)
