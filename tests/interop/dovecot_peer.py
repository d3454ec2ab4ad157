"""The Dovecot peer of the differential test, and what both servers' answers go through.

- ``dovecot_answers``: whether the peers kit's Dovecot listens on
  127.0.0.1:10143 (``.ci/run`` runs the kit's ``setup`` and ``start`` when not);
- ``load_dovecot``: the corpus written straight into ``testuser99``'s Maildir,
  owned by ``vmail``, with Dovecot's index files removed so that the next
  SELECT numbers the files afresh (UIDs 1..N in file-name order, a new
  UIDVALIDITY); each file's mtime is its internal date, as Dovecot reads it;
- ``RawImap``: a small socket client that returns each response whole, literals
  inlined, so the answers can be compared octet for octet;
- ``parse``: one response as Python values, which is where the normalisations
  that the RFCs allow happen (see ``parse``'s docstring).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from tests.interop.dovecot_corpus import CorpusMessage

PEER_HOST: Final = "127.0.0.1"
PEER_PORT: Final = 10143
PEER_USER: Final = "testuser99"  # nothing else uses it (the benches use testuser100)
PEER_PASSWORD: Final = "pass"


def peers_dir() -> Path:
    return Path(os.environ.get("PEERS_DIR", "/var/tmp/peers"))


def dovecot_answers() -> bool:
    """True when something listens on the peer port (what answers there is then
    checked by the test itself: a busy Dovecot may greet late, which is no skip)."""
    try:
        with socket.create_connection((PEER_HOST, PEER_PORT), timeout=10):
            return True
    except OSError:
        return False


def load_dovecot(messages: Sequence[CorpusMessage]) -> None:
    """Replace the INBOX of ``PEER_USER`` with ``messages``, in that order."""
    maildir = peers_dir() / "dovecot-mail" / PEER_USER / "Maildir"
    owner = pwd.getpwnam("vmail")
    for folder in (maildir.parent, maildir, *(maildir / sub for sub in ("cur", "new", "tmp"))):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    for sub in ("cur", "new", "tmp"):
        for entry in os.scandir(maildir / sub):
            os.unlink(entry.path)
    for entry in os.scandir(maildir):
        if entry.name.startswith("dovecot") and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
    for number, message in enumerate(messages, start=1):
        # the names sort in mailbox order: Dovecot gives new files UIDs in that order
        path = maildir / "cur" / f"{1700000000 + number}.M{number:06d}P1Q1.corpus:2,"
        path.write_bytes(message.data)
        os.chown(path, owner.pw_uid, owner.pw_gid)
        stamp = message.arrival.timestamp()
        os.utime(path, (stamp, stamp))


class ImapFailure(Exception):
    pass


class RawImap:
    """One IMAP connection; ``command`` returns (untagged responses, tagged line),
    each response a whole ``bytes`` with its literals inline and no final CRLF."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=60)
        self.file = self.sock.makefile("rb")
        self.tag = 0
        self.greeting = self._response()
        if not self.greeting.startswith(b"* OK"):
            raise ImapFailure(f"greeting: {self.greeting!r}")

    def close(self) -> None:
        with contextlib.suppress(OSError, ImapFailure):
            self.command(b"LOGOUT")
        self.file.close()
        self.sock.close()

    def _response(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self.file.readline()
            if not line.endswith(b"\r\n"):
                raise ImapFailure(f"connection closed after {b''.join(parts)!r}")
            line = line[:-2]
            parts.append(line)
            if line.endswith(b"}") and b"{" in line:
                size = int(line[line.rindex(b"{") + 1 : -1].rstrip(b"+"))
                parts.append(b"\r\n" + self.file.read(size))
                continue
            return b"".join(parts)

    def command(self, text: bytes, literal: bytes | None = None) -> tuple[list[bytes], bytes]:
        """Send one command (``literal``: sent as a synchronizing literal after it)."""
        self.tag += 1
        tag = b"t%d" % self.tag
        if literal is None:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text + b" {%d}\r\n" % len(literal))
            reply = self._response()
            if not reply.startswith(b"+"):
                raise ImapFailure(f"no continuation: {reply!r}")
            self.sock.sendall(literal + b"\r\n")
        untagged: list[bytes] = []
        while True:
            response = self._response()
            if response.startswith(tag + b" "):
                if not response.startswith(tag + b" OK"):
                    raise ImapFailure(f"{text[:80]!r}: {response!r}")
                return untagged, response
            if not response.startswith(b"+"):
                untagged.append(response)


# -- parsing answers ------------------------------------------------------------------------


class Atom(bytes):
    """An atom or number as sent (a string is plain ``bytes``; NIL is None)."""

    def __repr__(self) -> str:
        return f"Atom({bytes(self)!r})"


Value = bytes | None | list["Value"]


def _parse_list(data: bytes, pos: int, close: bytes) -> tuple[list[Value], int]:
    items: list[Value] = []
    while True:
        while pos < len(data) and data[pos : pos + 1] == b" ":
            pos += 1
        if pos >= len(data):
            if close:
                raise ValueError(f"unbalanced list in {data!r}")
            return items, pos
        char = data[pos : pos + 1]
        if char == close:
            return items, pos + 1
        if char in (b"(", b"["):
            inner, pos = _parse_list(data, pos + 1, b")" if char == b"(" else b"]")
            items.append(inner)
        elif char == b'"':
            pos += 1
            out = bytearray()
            while data[pos : pos + 1] != b'"':
                if data[pos : pos + 1] == b"\\":
                    pos += 1
                out += data[pos : pos + 1]
                pos += 1
            items.append(bytes(out))
            pos += 1
        elif char == b"{" or data[pos : pos + 2] == b"~{":  # literal, literal8 (RFC 3516)
            pos += char == b"~"
            end = data.index(b"}", pos)
            size = int(data[pos + 1 : end].rstrip(b"+"))
            start = end + 3  # "}\r\n"
            items.append(data[start : start + size])
            pos = start + size
        else:
            end = pos
            while end < len(data) and data[end : end + 1] not in b" ()[]" + close:
                end += 1
            if data[end : end + 1] == b"[":  # BODY[section]<origin>: one name
                end = data.index(b"]", end) + 1
                if data[end : end + 1] == b"<":
                    end = data.index(b">", end) + 1
            word = data[pos:end]
            items.append(None if word.upper() == b"NIL" else Atom(word))
            pos = end
    return items, pos


def parse(response: bytes) -> list[Value]:
    """An untagged response as values.

    Normalisation STRING_FORM: a string sent quoted and the same string sent as
    a literal parse to the same ``bytes``. RFC 9051 §4.3 (RFC 3501 §4.3):
    "There are two cases for string: literal and quoted"; a server picks either
    form for any string (Dovecot sends literals for strings holding characters
    a quoted string cannot, and sometimes just for long ones).
    """
    items, _ = _parse_list(response, 0, b"")
    return items


def fetch_items(response: bytes) -> tuple[int, dict[bytes, Value]]:
    """``* N FETCH (...)``: the number and its items by upper-cased name.

    Normalisation ITEM_ORDER: the items of one FETCH response are compared as a
    mapping. RFC 9051 §7.5.2 (RFC 3501 §7.4.2): the data items are "a parenthesized
    list of data item/value pairs"; nothing fixes their order.
    """
    parsed = parse(response)
    assert parsed[0] == b"*" and parsed[2] == b"FETCH", response
    body = parsed[3]
    assert isinstance(body, list), response
    items: dict[bytes, Value] = {}
    for index in range(0, len(body) - 1, 2):
        name = body[index]
        assert isinstance(name, bytes), response
        items[name.upper()] = body[index + 1]
    number = parsed[1]
    assert isinstance(number, bytes), response
    return int(number), items
