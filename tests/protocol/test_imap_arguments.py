"""Command arguments in detail: names, strings, mailbox names, LIST-EXTENDED, APPEND,
STORE, ID, ENABLE (RFC 9051 §6 and §9, with the extensions' RFCs)."""

from __future__ import annotations

from datetime import datetime

import pytest

from postoffice.protocol.imap.commands import (
    MAX_APPEND_MESSAGES,
    Append,
    AppendMessage,
    Authenticate,
    Create,
    Enable,
    Fetch,
    Id,
    ListMailboxes,
    Login,
    Search,
    Select,
    Status,
    StoreFlags,
    Transfer,
)
from postoffice.protocol.imap.fetch_items import FetchItem, Section
from postoffice.protocol.imap.search_keys import (
    SetKey,
)
from tests.protocol.imap_parsing import FRED, JOE, PST, parse, refused, seq

# --- arguments in detail ---------------------------------------------------------


def test_command_names_and_keywords_are_case_insensitive() -> None:
    assert parse(b"x uId fEtCh 1 (flags body.peek[Header])\r\n") == Fetch(
        "x",
        seq("1"),
        (FetchItem("FLAGS"), FetchItem("BODY", Section((), "HEADER"), peek=True)),
        True,
    )


def test_astrings_quoted_and_literal_and_escapes() -> None:
    assert parse(b'A LOGIN "fred smith" "p\\"w\\\\d"\r\n') == Login("A", b"fred smith", b'p"w\\d')
    assert parse(b"A LOGIN {5}\r\nalice {6+}\r\nsecret\r\n") == Login("A", b"alice", b"secret")
    # A literal may hold anything but NUL (RFC 9051 §4.3), CRLF included.
    assert parse(b"A LOGIN {4}\r\na\r\nb x\r\n") == Login("A", b"a\r\nb", b"x")
    assert refused(b"A LOGIN {3}\r\na\x00b x\r\n").tag == "A"
    # NIL is an atom like any other in an astring
    assert parse(b"A LOGIN NIL NIL\r\n") == Login("A", b"NIL", b"NIL")


def test_mailbox_names_are_decoded_and_validated() -> None:
    assert parse(b"A SELECT inbox\r\n") == Select("A", "INBOX", False)  # RFC 9051 §5.1
    assert parse(b'A SELECT "Gr&APw-n"\r\n') == Select("A", "Grün", False)  # RFC 3501 §5.1.3
    assert parse(b"A SELECT &ZeVnLIqe-\r\n") == Select("A", "日本語", False)
    assert parse(b"A SELECT {4}\r\nA&-B\r\n") == Select("A", "A&B", False)
    for bad in (b'""', b"a/../b", b"&Jjo", b"/x", b"x//y", b'"a\\\\b"'):
        assert refused(b"A SELECT " + bad + b"\r\n").tag == "A"


def test_mailbox_names_are_utf8_once_enabled() -> None:
    # RFC 9051 §5.1 / RFC 6855 §3: after ENABLE IMAP4rev2 or UTF8=ACCEPT
    assert parse('A SELECT "Grün"\r\n'.encode(), utf8=True) == Select("A", "Grün", False)
    assert parse(b"A SELECT A&B\r\n", utf8=True) == Select("A", "A&B", False)
    assert refused('A SELECT "Grün"\r\n'.encode()).tag == "A"  # 8-bit quoted before
    assert refused(b"A SELECT {2}\r\n\xff\xfe\r\n", utf8=True).tag == "A"
    listed = parse('A LIST "Übung/" "ä%"\r\n'.encode(), utf8=True)
    assert listed == ListMailboxes("A", "Übung/", ("ä%",))


def test_create_declares_the_hierarchy_with_a_trailing_delimiter() -> None:
    # RFC 9051 §6.3.4: the name is without the delimiter; the declaration is kept
    # for a store that needs it (mbox makes a directory, not a mailbox).
    assert parse(b"A003 CREATE owatagusiam/\r\n") == Create("A003", "owatagusiam", parent=True)
    assert parse(b"A003 CREATE owatagusiam\r\n") == Create("A003", "owatagusiam")
    assert refused(b"A CREATE owatagusiam//\r\n").status == "BAD"
    assert refused(b"A CREATE /\r\n").status == "BAD"
    # Only CREATE: a trailing delimiter names no mailbox elsewhere.
    assert refused(b"A SELECT owatagusiam/\r\n").status == "BAD"
    assert refused(b"A DELETE owatagusiam/\r\n").status == "BAD"


@pytest.mark.parametrize(
    ("wire", "uses"),
    [
        (b"A CREATE x (USE (\\Archive))\r\n", ("\\Archive",)),
        (b"A CREATE x (USE ())\r\n", ()),
        (
            b"A CREATE x (use (\\All \\Junk \\Trash \\Flagged))\r\n",
            ("\\All", "\\Junk", "\\Trash", "\\Flagged"),
        ),
    ],
)
def test_create_special_use(wire: bytes, uses: tuple[str, ...]) -> None:
    # RFC 6154 §6: create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"
    assert parse(wire) == Create("A", "x", uses)


def test_select_takes_an_empty_parameter_list_and_refuses_unknown_ones() -> None:
    assert parse(b"A SELECT INBOX ()\r\n") == Select("A", "INBOX", False)
    assert parse(b"A SELECT INBOX (CONDSTORE)\r\n") == Select("A", "INBOX", False, True)
    assert "XQRESYNC" in str(refused(b"A SELECT INBOX (XQRESYNC (1 2))\r\n"))


def test_list_extended_all_options_together() -> None:
    wire = (
        b"A LIST (SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE) Ref/ (INBOX Drafts {5}\r\nSent/)"
        b" RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UIDNEXT UNSEEN))\r\n"
    )
    assert parse(wire) == ListMailboxes(
        "A",
        "Ref/",
        ("INBOX", "Drafts", "Sent/"),
        frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}),
        frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"}),
        ("MESSAGES", "UIDNEXT", "UNSEEN"),
        extended=True,
    )


def test_list_return_empty_is_extended_syntax() -> None:
    assert parse(b'A LIST "" * RETURN ()\r\n') == ListMailboxes("A", "", ("*",), extended=True)


def test_list_patterns_keep_wildcards_and_decode_mutf7() -> None:
    assert parse(b'A LIST "" "&AMQ-*"\r\n') == ListMailboxes("A", "", ("Ä*",))
    assert parse(b"A LIST Foo/ %/*\r\n") == ListMailboxes("A", "Foo/", ("%/*",))


@pytest.mark.parametrize(
    "wire",
    [
        b'A LSUB (SUBSCRIBED) "" *\r\n',  # LSUB has no LIST-EXTENDED syntax
        b'A LSUB "" * RETURN (CHILDREN)\r\n',
        b'A LSUB "" ("a" "b")\r\n',
        b'A LIST "" ()\r\n',
        b'A LIST "" (a\r\n',
        b'A LIST "" % RETURN (STATUS ())\r\n',
        b'A LIST "" % RETURN (STATUS)\r\n',
        b'A LIST "" % RETURNS (CHILDREN)\r\n',
        b'A LIST "" % RETURN CHILDREN\r\n',
        b'A LIST (SUBSCRIBED "" *\r\n',
        b'A LIST ""\r\n',
        b"A LIST\r\n",
    ],
)
def test_list_syntax_errors(wire: bytes) -> None:
    error = refused(wire)
    assert (error.tag, error.status, error.code) == ("A", "BAD", None)


def test_status_items_are_upper_cased_and_required() -> None:
    assert parse(b"A STATUS x (messages uidvalidity SIZE)\r\n") == Status(
        "A", "x", ("MESSAGES", "UIDVALIDITY", "SIZE")
    )
    assert refused(b"A STATUS x ()\r\n").status == "BAD"
    assert refused(b"A STATUS x\r\n").status == "BAD"


def test_multiappend_with_flags_and_date_times() -> None:
    # RFC 3502 §6: two messages, the second with its own flags and date-time.
    wire = (
        b"A003 APPEND saved-messages (\\Seen) {%d}\r\n%b" % (len(FRED), FRED)
        + b' (\\Seen $Forwarded) " 7-Feb-1994 22:43:04 -0800" {%d}\r\n%b' % (len(JOE), JOE)
        + b' "07-Feb-1994 21:52:25 -0800" {1+}\r\nx\r\n'
    )
    assert parse(wire) == Append(
        "A003",
        "saved-messages",
        (
            AppendMessage(("\\Seen",), None, FRED, False),
            AppendMessage(
                ("\\Seen", "$Forwarded"), datetime(1994, 2, 7, 22, 43, 4, tzinfo=PST), JOE, False
            ),
            AppendMessage((), datetime(1994, 2, 7, 21, 52, 25, tzinfo=PST), b"x", False),
        ),
    )


def test_append_literal8_carries_nul() -> None:
    # RFC 3516 §4.4: APPEND takes literal8 for binary content.
    data = b"\x00\x01\xff\r\n"
    command = parse(b"A APPEND Drafts (\\Draft) ~{%d}\r\n%b {1}\r\nz\r\n" % (len(data), data))
    assert command == Append(
        "A",
        "Drafts",
        (AppendMessage(("\\Draft",), None, data, True), AppendMessage((), None, b"z", False)),
    )


@pytest.mark.parametrize(
    "wire",
    [
        b"A APPEND INBOX\r\n",  # no message
        b"A APPEND INBOX abc\r\n",  # not a literal
        b"A APPEND INBOX {3}\r\nab\x00\r\n",  # NUL outside literal8
        b"A APPEND INBOX {4}\r\nabc\r\n",  # the literal eats the CRLF
        b'A APPEND INBOX "7-Feb-1994 21:52:25 -0800" {1}\r\nx\r\n',  # date-day-fixed
        b'A APPEND INBOX "32-Feb-1994 21:52:25 -0800" {1}\r\nx\r\n',
        b'A APPEND INBOX " 7-Feb-1994 21:52:25" {1}\r\nx\r\n',
        b"A APPEND INBOX (\\Seen {1}\r\nx\r\n",
        b"A APPEND INBOX (\\Seen) (\\Draft) {1}\r\nx\r\n",
        b"A APPEND INBOX {1}\r\nx {1}\r\n",
        b"A APPEND INBOX {1}\r\nx  {1}\r\ny\r\n",
        b"A LOGIN ~{1}\r\nx y\r\n",  # literal8 only where BINARY allows it
    ],
)
def test_append_syntax_errors(wire: bytes) -> None:
    error = refused(wire)
    assert (error.tag, error.status) == ("A", "BAD")


def test_append_message_count_is_bounded() -> None:
    many = b"A APPEND INBOX" + b" {1}\r\nx" * (MAX_APPEND_MESSAGES + 1) + b"\r\n"
    assert "too many" in str(refused(many))
    enough = b"A APPEND INBOX" + b" {1}\r\nx" * MAX_APPEND_MESSAGES + b"\r\n"
    command = parse(enough)
    assert isinstance(command, Append)
    assert len(command.messages) == MAX_APPEND_MESSAGES


@pytest.mark.parametrize(
    ("wire", "mode", "silent", "flags"),
    [
        (b"A STORE 1 FLAGS (\\Seen)\r\n", "", False, ("\\Seen",)),
        (b"A STORE 1 FLAGS ()\r\n", "", False, ()),
        (b"A STORE 1 -FLAGS.SILENT (\\Seen $Junk)\r\n", "-", True, ("\\Seen", "$Junk")),
        (b"A STORE 1 +flags.silent \\Seen \\Draft\r\n", "+", True, ("\\Seen", "\\Draft")),
    ],
)
def test_store_forms(wire: bytes, mode: str, silent: bool, flags: tuple[str, ...]) -> None:
    # RFC 9051 §6.4.6
    assert parse(wire) == StoreFlags("A", seq("1"), mode, silent, flags, uid=False)


def test_uid_store_copy_and_search() -> None:
    assert parse(b"A UID STORE 1:* +FLAGS (\\Deleted)\r\n") == StoreFlags(
        "A", seq("1:*"), "+", False, ("\\Deleted",), uid=True
    )
    assert parse(b"A UID COPY 5,7 Trash\r\n") == Transfer("A", seq("5,7"), "Trash", True, False)
    assert parse(b"A MOVE * Trash\r\n") == Transfer("A", seq("*"), "Trash", False, True)
    assert parse(b"A UID SEARCH UID 4:*\r\n") == Search("A", SetKey(seq("4:*"), uid=True), uid=True)


def test_authenticate_mechanism_is_upper_cased() -> None:
    assert parse(b"A AUTHENTICATE cram-md5\r\n") == Authenticate("A", "CRAM-MD5", None)


def test_id_fields() -> None:
    assert parse(b"A ID ()\r\n") == Id("A", ())
    assert parse(b'A ID ("os" NIL {4}\r\nname "x y")\r\n') == Id(
        "A", (("os", None), ("name", "x y"))
    )
    # RFC 2971 §3.3: at most 30 field-value pairs
    thirty = b" ".join(b'"k%d" "v"' % n for n in range(30))
    command = parse(b"A ID (" + thirty + b")\r\n")
    assert isinstance(command, Id)
    assert command.fields is not None
    assert len(command.fields) == 30
    assert "too many" in str(refused(b"A ID (" + thirty + b' "k30" "v")\r\n'))


def test_enable_names() -> None:
    assert parse(b"A ENABLE IMAP4rev2 utf8=accept\r\n") == Enable("A", ("IMAP4REV2", "UTF8=ACCEPT"))
