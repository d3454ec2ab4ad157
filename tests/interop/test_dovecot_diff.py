"""A differential test: postoffice's IMAP answers against Dovecot's, for the same mailbox.

The corpus (``dovecot_corpus``) goes into the peers kit's Dovecot
(``testuser99``, written into its Maildir) and, by APPEND with the same
internal dates, into a fresh ``postoffice serve``. Then the same FETCH,
SEARCH, SORT and THREAD commands go to both, and the answers must be equal
after the normalisations that the RFCs allow, each named and justified with
its RFC where it is defined: ``dovecot_peer.parse`` (STRING_FORM),
``dovecot_peer.fetch_items`` (ITEM_ORDER) and ``dovecot_normal`` (MEDIA_CASE,
PARAM_2231, SUBJECT_WHITESPACE, DUPLICATE_SUBJECT, DATE_DAY_FIXED,
TRAILING_CRLF, and the messages ``EXCUSED`` from single commands). The
tagged OK lines are never compared: their text is the server's own (RFC 9051
§7.1). What differed because postoffice was wrong was fixed instead (SORT's
collation and the addr-mailbox of a group: tests/imap/test_sort.py).

Dovecot 2.3 here is an IMAP4rev1 server; postoffice is asked nothing of
IMAP4rev2 (no ENABLE), so both answer as RFC 3501 says.

The test skips only when nothing answers on 127.0.0.1:10143: ``.ci/run``
then runs the kit's ``setup`` and ``start`` (../shared/peers) first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.smtp_fixtures import HOST, SmtpServer
from tests.interop.dovecot_corpus import CORPUS
from tests.interop.dovecot_normal import (
    EXCUSED,
    TRAILING_CRLF,
    media_case,
    normal_fetch,
    trailing_crlf,
    without,
)
from tests.interop.dovecot_peer import (
    PEER_HOST,
    PEER_PASSWORD,
    PEER_PORT,
    PEER_USER,
    Atom,
    RawImap,
    Value,
    dovecot_answers,
    fetch_items,
    load_dovecot,
    parse,
)

if not dovecot_answers():
    pytest.skip(
        "no Dovecot on 127.0.0.1:10143; .ci/run starts it (../shared/peers setup and start)",
        allow_module_level=True,
    )

USER = "corpus"
PASSWORD = "corpus-pw"


@dataclass
class Pair:
    dovecot: RawImap
    postoffice: RawImap

    def both(self, command: bytes) -> tuple[list[bytes], list[bytes]]:
        """The untagged answers of both, to the same command with the same tag
        (ESEARCH echoes it, RFC 4731 §3.1)."""
        self.dovecot.tag = self.postoffice.tag = max(self.dovecot.tag, self.postoffice.tag)
        return self.dovecot.command(command)[0], self.postoffice.command(command)[0]


def _internal_date(index: int) -> bytes:
    return CORPUS[index].arrival.strftime('"%d-%b-%Y %H:%M:%S +0000"').encode()


_NUMBERING = b"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (X-CORPUS)])"


def _loaded_dovecot() -> RawImap:
    """A session on the freshly loaded peer mailbox, INBOX selected. A session of
    an earlier run that Dovecot has not ended yet can write the old index back
    while the files are replaced; then the numbering is off and one reload helps."""
    for attempt in (1, 2):
        load_dovecot(CORPUS)
        peer = RawImap(PEER_HOST, PEER_PORT)
        peer.command(f"LOGIN {PEER_USER} {PEER_PASSWORD}".encode())
        peer.command(b"SELECT INBOX")
        answers = [fetch_items(response) for response in peer.command(_NUMBERING)[0]]
        numbering = [(number, items[b"UID"]) for number, items in answers]
        if numbering == [(n, str(n).encode()) for n in range(1, len(CORPUS) + 1)]:
            return peer
        peer.close()
        assert attempt == 1, f"Dovecot numbered the corpus {numbering}"
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    server = SmtpServer(
        Path(tmp_path_factory.mktemp("dovecot-diff")) / "var",
        users=(USER,),
        password=PASSWORD,
        sections={"imap": {"plaintext_auth_on_loopback": True}},
    ).setup()
    server.start()
    clients: list[RawImap] = []
    try:
        ours = RawImap(HOST, server.imap_port)
        clients.append(ours)
        ours.command(f"LOGIN {USER}@{server.domain} {PASSWORD}".encode())
        for index, message in enumerate(CORPUS):
            ours.command(b"APPEND INBOX () " + _internal_date(index), message.data)
        ours.command(b"SELECT INBOX")
        peer = _loaded_dovecot()
        clients.append(peer)
        yield Pair(peer, ours)
    finally:
        for client in clients:
            client.close()
        server.stop()


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) < 1500 else text[:1500] + "..."


def compare_fetch(pair: Pair, command: bytes) -> None:
    theirs, ours = pair.both(command)
    peer = dict(fetch_items(response) for response in theirs)
    mine = dict(fetch_items(response) for response in ours)
    assert sorted(peer) == sorted(mine), command
    for number in EXCUSED.get(command, ()):
        del peer[number], mine[number]
    for number in TRAILING_CRLF.get(command, ()):
        for answer in (peer, mine):
            answer[number] = {name: trailing_crlf(item) for name, item in answer[number].items()}
    peer = {number: normal_fetch(number, items) for number, items in peer.items()}
    mine = {number: normal_fetch(number, items) for number, items in mine.items()}
    differences = [
        f"message {number}:\n  dovecot    {_show(peer[number])}\n  postoffice {_show(mine[number])}"
        for number in sorted(peer)
        if peer[number] != mine[number]
    ]
    assert not differences, f"{command!r}\n" + "\n".join(differences)


def compare(pair: Pair, command: bytes) -> list[Value]:
    theirs, ours = pair.both(command)
    excused = EXCUSED.get(command, frozenset())
    peer = [without(excused, parse(response)) for response in theirs]
    mine = [without(excused, parse(response)) for response in ours]
    assert peer == mine, f"{command!r}\n  dovecot    {_show(peer)}\n  postoffice {_show(mine)}"
    return mine


def test_both_numbered_the_corpus_alike(pair: Pair) -> None:
    command = b"FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (X-CORPUS)])"
    compare_fetch(pair, command)
    _, ours = pair.both(command)
    assert len(ours) == len(CORPUS)
    for number, response in enumerate(ours, start=1):
        _, items = fetch_items(response)
        assert items[b"UID"] == str(number).encode()
        assert items[b"BODY[HEADER.FIELDS (X-CORPUS)]"] == b"X-Corpus: %d\r\n\r\n" % number


@pytest.mark.parametrize(
    "items", [b"ENVELOPE", b"BODYSTRUCTURE", b"BODY", b"INTERNALDATE", b"RFC822.SIZE"]
)
def test_fetch_structures(pair: Pair, items: bytes) -> None:
    compare_fetch(pair, b"FETCH 1:* (" + items + b")")


SECTIONS = [
    b"BODY.PEEK[HEADER]",
    b"BODY.PEEK[TEXT]",
    b"BODY.PEEK[1]",
    b"BODY.PEEK[1.MIME]",
    b"BODY.PEEK[2]",
    b"BODY.PEEK[2.MIME]",
    b"BODY.PEEK[1.1]",
    b"BODY.PEEK[1.2.1]",
    b"BODY.PEEK[1.2.2.MIME]",
    b"BODY.PEEK[2.HEADER]",
    b"BODY.PEEK[2.TEXT]",
    b"BODY.PEEK[2.2]",
    b"BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]",
    b"BODY.PEEK[HEADER.FIELDS.NOT (RECEIVED X-CORPUS TO)]",
    b"BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]",
    b"BODY.PEEK[1]<4.10>",
    b"BINARY.PEEK[1]",
]


@pytest.mark.parametrize("section", SECTIONS)
def test_fetch_sections(pair: Pair, section: bytes) -> None:
    compare_fetch(pair, b"FETCH 1:* (" + section + b")")


SEARCHES = [
    b"SEARCH ALL",
    b"SEARCH SUBJECT kickoff",
    b'SEARCH SUBJECT "build broken"',
    b"SEARCH FROM bob",
    b"SEARCH FROM example.org",
    b"SEARCH TO alice CC carol",
    b"SEARCH BCC archive",
    b"SEARCH TEXT snacks",
    b'SEARCH BODY "long report"',
    b"SEARCH BODY Welcome",
    b"SEARCH HEADER List-Id news",
    b"SEARCH HEADER Message-ID kickoff",
    b'SEARCH HEADER In-Reply-To ""',
    b"SEARCH SINCE 10-Mar-2024",
    b"SEARCH BEFORE 5-Mar-2024",
    b"SEARCH ON 12-Mar-2024",
    b"SEARCH SENTSINCE 20-Mar-2024",
    b"SEARCH SENTBEFORE 5-Mar-2024",
    b"SEARCH SENTON 13-Mar-2024",
    b"SEARCH LARGER 2000",
    b"SEARCH SMALLER 500",
    b"SEARCH OR FROM bob FROM carol",
    b"SEARCH NOT FROM example.com",
    b"SEARCH OR SUBJECT loop NOT SENTSINCE 1-Mar-2024",
    b"SEARCH UID 5:10,40:*",
    b"SEARCH 1:5 NOT UID 3",
    b"UID SEARCH UID 45:* SUBJECT lost",
    b"SEARCH CHARSET UTF-8 SUBJECT {7+}\r\nGr\xc3\xbc\xc3\x9fe",
    b"SEARCH CHARSET UTF-8 FROM {5+}\r\nJ\xc3\xb6rg",
    b"SEARCH CHARSET UTF-8 BODY {5+}\r\ncaf\xc3\xa9",
    b"SEARCH CHARSET UTF-8 TEXT {7+}\r\nZ\xc3\xbcrich",
]


@pytest.mark.parametrize("command", SEARCHES)
def test_search(pair: Pair, command: bytes) -> None:
    """Every search of the list finds something: equal answers are not empty ones."""
    (answer,) = compare(pair, command)
    assert isinstance(answer, list) and len(answer) > 2, answer


SORT_KEYS = [
    b"ARRIVAL",
    b"CC",
    b"DATE",
    b"FROM",
    b"SIZE",
    b"SUBJECT",
    b"TO",
    b"DISPLAYFROM",
    b"DISPLAYTO",
    b"REVERSE ARRIVAL",
    b"REVERSE DATE",
    b"REVERSE SUBJECT",
    b"SUBJECT REVERSE DATE",
    b"REVERSE FROM DATE",
    b"CC REVERSE SIZE",
    b"REVERSE DISPLAYFROM",
    b"TO REVERSE DISPLAYTO ARRIVAL",
]


@pytest.mark.parametrize("keys", SORT_KEYS)
def test_sort(pair: Pair, keys: bytes) -> None:
    compare(pair, b"SORT (" + keys + b") UTF-8 ALL")


def test_sort_with_search_and_uid(pair: Pair) -> None:
    compare(pair, b"UID SORT (REVERSE SIZE) UTF-8 OR FROM example.org SINCE 20-Mar-2024")
    # 1:52 leaves out 53, whose date Dovecot cannot read (dovecot_normal.PRE_EPOCH)
    compare(pair, b"SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 1:52")
    compare(pair, b"SORT RETURN (ALL) (SUBJECT) UTF-8 1:52")


@pytest.mark.parametrize("algorithm", [b"ORDEREDSUBJECT", b"REFERENCES"])
def test_thread(pair: Pair, algorithm: bytes) -> None:
    compare(pair, b"THREAD " + algorithm + b" UTF-8 ALL")
    compare(pair, b"UID THREAD " + algorithm + b" UTF-8 UID 10:*")


def test_normalisations_forgive_only_what_they_name() -> None:
    """MEDIA_CASE and PARAM_2231 make the two spellings of one body equal, and
    leave a different size, value or language-free charset different."""
    theirs = parse(
        b'("application" "octet-stream" NIL NIL NIL "base64" 82 NIL '
        b'("attachment" ("filename*0*" "iso-8859-1\'fr\'caf%E9" "filename*1" ".csv")) '
        b"NIL NIL)"
    )[0]
    ours = parse(
        b'("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 82 NIL '
        b'("ATTACHMENT" ("FILENAME*" "utf-8\'\'caf%C3%A9.csv")) NIL NIL)'
    )[0]
    assert theirs != ours
    assert media_case(theirs) == media_case(ours)
    assert isinstance(ours, list)
    assert media_case([*ours[:6], Atom(b"83"), *ours[7:]]) != media_case(theirs)
    other_value = parse(b'("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 1 1)')[0]
    assert media_case(other_value) != media_case(
        parse(b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 1 1)')[0]
    )
    numbers = parse(b"* THREAD (53)(1 (2)(3))")
    assert without(frozenset({53}), numbers) == without(frozenset(), parse(b"* THREAD (1 (2)(3))"))
    assert without(frozenset({2}), numbers) != numbers
