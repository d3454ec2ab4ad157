"""Commands as values: ``CommandParser`` with ``GrammarReader``, FETCH items and SEARCH keys.

The wire forms are the examples of RFC 9051 §6 and RFC 3501 §6 (one or more
per command) and of the extensions handled: LIST-EXTENDED (RFC 5258),
LIST-STATUS (RFC 5819), CREATE-SPECIAL-USE (RFC 6154), MULTIAPPEND
(RFC 3502), BINARY (RFC 3516), ESEARCH (RFC 4731), SASL-IR (RFC 4959), ID
(RFC 2971), UIDPLUS (RFC 4315), MOVE (RFC 6851). Every refusal is a
``CommandError`` that carries the tag, and garbage raises nothing else.
"""

from __future__ import annotations

from datetime import date

import pytest

from postoffice.protocol.imap.commands import (
    Append,
    AppendMessage,
    Authenticate,
    Command,
    Create,
    Enable,
    Fetch,
    Id,
    ListMailboxes,
    Login,
    MailboxCommand,
    NoArguments,
    Rename,
    Search,
    Select,
    Status,
    StoreFlags,
    Transfer,
    UidExpunge,
    command_word,
)
from postoffice.protocol.imap.fetch_items import FetchItem, Section
from postoffice.protocol.imap.parser import CommandError
from postoffice.protocol.imap.search_keys import (
    AndKey,
    DateKey,
    FlagKey,
    HeaderKey,
    NotKey,
    SetKey,
    TextKey,
)
from tests.protocol.imap_parsing import FRED, assert_trailing_text_refused, parse, seq

# --- every command, from the RFC examples ---------------------------------------

RFC_EXAMPLES: list[tuple[str, bytes, Command]] = [
    # RFC 9051 §6.1 any state
    ("6.1.1 CAPABILITY", b"abcd CAPABILITY\r\n", NoArguments("abcd", "CAPABILITY")),
    ("6.1.2 NOOP", b"a002 NOOP\r\n", NoArguments("a002", "NOOP")),
    ("6.1.3 LOGOUT", b"A023 LOGOUT\r\n", NoArguments("A023", "LOGOUT")),
    # §6.2 not authenticated
    ("6.2.1 STARTTLS", b"a002 STARTTLS\r\n", NoArguments("a002", "STARTTLS")),
    ("6.2.2 AUTHENTICATE", b"A001 AUTHENTICATE GSSAPI\r\n", Authenticate("A001", "GSSAPI", None)),
    (
        "6.2.2 AUTHENTICATE with initial response (RFC 4959)",
        b"a004 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
        Authenticate("a004", "PLAIN", "dGVzdAB0ZXN0AHRlc3Q="),
    ),
    (
        "RFC 4959 empty initial response",
        b"A01 AUTHENTICATE EXTERNAL =\r\n",
        Authenticate("A01", "EXTERNAL", "="),
    ),
    ("6.2.3 LOGIN", b"a001 LOGIN SMITH SESAME\r\n", Login("a001", b"SMITH", b"SESAME")),
    # §6.3 authenticated
    (
        "6.3.1 ENABLE (RFC 5161 example)",
        b"t2 ENABLE CONDSTORE X-GOOD-IDEA\r\n",
        Enable("t2", ("CONDSTORE", "X-GOOD-IDEA")),
    ),
    ("6.3.2 SELECT", b"A142 SELECT INBOX\r\n", Select("A142", "INBOX", read_only=False)),
    ("6.3.3 EXAMINE", b"A932 EXAMINE blurdybloop\r\n", Select("A932", "blurdybloop", True)),
    (
        "6.3.4 CREATE",
        b"A004 CREATE owatagusiam/blurdybloop\r\n",
        Create("A004", "owatagusiam/blurdybloop"),
    ),
    (
        "6.3.4 CREATE with the delimiter declared",
        b"A003 CREATE owatagusiam/\r\n",
        Create("A003", "owatagusiam", parent=True),
    ),
    (
        "6.3.5 DELETE",
        b"A683 DELETE blurdybloop\r\n",
        MailboxCommand("A683", "DELETE", "blurdybloop"),
    ),
    ("6.3.5 DELETE child", b"A685 DELETE foo/bar\r\n", MailboxCommand("A685", "DELETE", "foo/bar")),
    (
        "6.3.6 RENAME",
        b"A683 RENAME blurdybloop sarasoop\r\n",
        Rename("A683", "blurdybloop", "sarasoop"),
    ),
    ("6.3.6 RENAME INBOX", b"Z433 RENAME INBOX old-mail\r\n", Rename("Z433", "INBOX", "old-mail")),
    (
        "6.3.7 SUBSCRIBE",
        b"A002 SUBSCRIBE #news.comp.mail.mime\r\n",
        MailboxCommand("A002", "SUBSCRIBE", "#news.comp.mail.mime"),
    ),
    (
        "6.3.8 UNSUBSCRIBE",
        b"A002 UNSUBSCRIBE #news.comp.mail.mime\r\n",
        MailboxCommand("A002", "UNSUBSCRIBE", "#news.comp.mail.mime"),
    ),
    ("6.3.9 LIST root", b'A101 LIST "" ""\r\n', ListMailboxes("A101", "", ("",))),
    (
        "6.3.9 LIST reference",
        b'A102 LIST #news.comp.mail.misc ""\r\n',
        ListMailboxes("A102", "#news.comp.mail.misc", ("",)),
    ),
    (
        "6.3.9 LIST path reference",
        b'A103 LIST /usr/staff/jones ""\r\n',
        ListMailboxes("A103", "/usr/staff/jones", ("",)),
    ),
    ("6.3.9 LIST %", b"A202 LIST ~/Mail/ %\r\n", ListMailboxes("A202", "~/Mail/", ("%",))),
    ("6.3.9 LIST *", b'A682 LIST "" *\r\n', ListMailboxes("A682", "", ("*",))),
    (
        "RFC 3501 §6.3.9 LSUB",
        b'A002 LSUB "news." "comp.mail.*"\r\n',
        ListMailboxes("A002", "news.", ("comp.mail.*",), lsub=True),
    ),
    ("6.3.10 NAMESPACE", b"A001 NAMESPACE\r\n", NoArguments("A001", "NAMESPACE")),
    (
        "6.3.11 STATUS",
        b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
        Status("A042", "blurdybloop", ("UIDNEXT", "MESSAGES")),
    ),
    (
        "6.3.12 APPEND",
        b"A003 APPEND saved-messages (\\Seen) {310}\r\n" + FRED + b"\r\n",
        Append("A003", "saved-messages", (AppendMessage(("\\Seen",), None, FRED, False),)),
    ),
    ("6.3.13 IDLE", b"A002 IDLE\r\n", NoArguments("A002", "IDLE")),
    # §6.4 selected
    ("6.4.1 CLOSE", b"A341 CLOSE\r\n", NoArguments("A341", "CLOSE")),
    ("6.4.2 UNSELECT", b"A342 UNSELECT\r\n", NoArguments("A342", "UNSELECT")),
    ("6.4.3 EXPUNGE", b"A202 EXPUNGE\r\n", NoArguments("A202", "EXPUNGE")),
    ("RFC 3501 §6.4.1 CHECK", b"FXXZ CHECK\r\n", NoArguments("FXXZ", "CHECK")),
    (
        "6.4.4 SEARCH",
        b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
        Search(
            "A282",
            AndKey(
                (
                    FlagKey("\\Flagged", True),
                    DateKey(False, "SINCE", date(1994, 2, 1)),
                    NotKey(HeaderKey("From", "Smith")),
                )
            ),
            uid=False,
        ),
    ),
    (
        "6.4.4 SEARCH RETURN (MIN COUNT) (RFC 4731)",
        b'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
        Search(
            "A282",
            AndKey(
                (
                    FlagKey("\\Flagged", True),
                    DateKey(False, "SINCE", date(1994, 2, 1)),
                    NotKey(HeaderKey("From", "Smith")),
                )
            ),
            uid=False,
            return_options=("MIN", "COUNT"),
        ),
    ),
    (
        "6.4.4 SEARCH RETURN ()",
        b'A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
        Search(
            "A283",
            AndKey(
                (
                    FlagKey("\\Flagged", True),
                    DateKey(False, "SINCE", date(1994, 2, 1)),
                    NotKey(HeaderKey("From", "Smith")),
                )
            ),
            uid=False,
            return_options=(),
        ),
    ),
    (
        "6.4.4 SEARCH TEXT",
        b'A283 SEARCH TEXT "string not in mailbox"\r\n',
        Search("A283", TextKey("TEXT", "string not in mailbox"), uid=False),
    ),
    (
        "6.4.4 SEARCH CHARSET UTF-8 with a literal",
        b"A284 SEARCH CHARSET UTF-8 TEXT {12}\r\n" + "отпуск".encode() + b"\r\n",
        Search("A284", TextKey("TEXT", "отпуск"), uid=False, charset="UTF-8"),
    ),
    (
        "6.4.5 FETCH",
        b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
        Fetch(
            "A654",
            seq("2:4"),
            (FetchItem("FLAGS"), FetchItem("BODY", Section((), "HEADER.FIELDS", ("DATE", "FROM")))),
            uid=False,
        ),
    ),
    (
        "6.4.6 STORE",
        b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n",
        StoreFlags("A003", seq("2:4"), "+", False, ("\\Deleted",), uid=False),
    ),
    (
        "6.4.7 COPY",
        b"A003 COPY 2:4 MEETING\r\n",
        Transfer("A003", seq("2:4"), "MEETING", uid=False, move=False),
    ),
    (
        "6.4.8 MOVE (RFC 6851 §4.1)",
        b"a UID MOVE 42:69 foo\r\n",
        Transfer("a", seq("42:69"), "foo", uid=True, move=True),
    ),
    (
        "6.4.9 UID FETCH",
        b"A999 UID FETCH 4827313:4828442 FLAGS\r\n",
        Fetch("A999", seq("4827313:4828442"), (FetchItem("FLAGS"),), uid=True),
    ),
    (
        "6.4.9 UID EXPUNGE (RFC 4315 §2.1)",
        b"A003 UID EXPUNGE 3000:3002\r\n",
        UidExpunge("A003", seq("3000:3002")),
    ),
    # RFC 3501 §8 sample session, in the client's lower case
    ("§8 login", b"a001 login mrc secret\r\n", Login("a001", b"mrc", b"secret")),
    ("§8 select", b"a002 select inbox\r\n", Select("a002", "INBOX", read_only=False)),
    (
        "§8 fetch full",
        b"a003 fetch 12 full\r\n",
        Fetch(
            "a003",
            seq("12"),
            tuple(
                FetchItem(n) for n in ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")
            ),
            uid=False,
        ),
    ),
    (
        "§8 fetch body[header]",
        b"a004 fetch 12 body[header]\r\n",
        Fetch("a004", seq("12"), (FetchItem("BODY", Section((), "HEADER")),), uid=False),
    ),
    (
        "§8 store",
        b"a005 store 12 +flags \\deleted\r\n",
        StoreFlags("a005", seq("12"), "+", False, ("\\deleted",), uid=False),
    ),
    ("§8 logout", b"a006 logout\r\n", NoArguments("a006", "LOGOUT")),
    # RFC 2971 §4 ID
    (
        "RFC 2971 ID",
        b'a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")\r\n',
        Id(
            "a023", (("name", "sodr"), ("version", "19.34"), ("vendor", "Pink Floyd Music Limited"))
        ),
    ),
    ("RFC 2971 ID NIL", b"a042 ID NIL\r\n", Id("a042", None)),
    # RFC 6154 §5.3
    (
        "RFC 6154 CREATE-SPECIAL-USE",
        b"t2 CREATE MySpecial (USE (\\Drafts \\Sent))\r\n",
        Create("t2", "MySpecial", ("\\Drafts", "\\Sent")),
    ),
    # RFC 5819 §3
    (
        "RFC 5819 LIST-STATUS",
        b'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))\r\n',
        ListMailboxes(
            "A01",
            "",
            ("%",),
            return_options=frozenset({"STATUS"}),
            status_items=("MESSAGES", "UNSEEN"),
            extended=True,
        ),
    ),
    # RFC 5258 §5 / RFC 9051 §6.3.9
    (
        "RFC 5258 selection option",
        b'A02 LIST (SUBSCRIBED) "" "*"\r\n',
        ListMailboxes("A02", "", ("*",), select_options=frozenset({"SUBSCRIBED"}), extended=True),
    ),
    (
        "RFC 5258 empty selection, CHILDREN",
        b'A03 LIST () "" "%" RETURN (CHILDREN)\r\n',
        ListMailboxes("A03", "", ("%",), return_options=frozenset({"CHILDREN"}), extended=True),
    ),
    (
        "RFC 5258 RECURSIVEMATCH",
        b'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)\r\n',
        ListMailboxes(
            "C04",
            "",
            ("%",),
            select_options=frozenset({"SUBSCRIBED", "RECURSIVEMATCH"}),
            return_options=frozenset({"CHILDREN"}),
            extended=True,
        ),
    ),
    (
        "RFC 5258 multiple patterns",
        b'A06 LIST "" ("INBOX" "Drafts" "Sent/%")\r\n',
        ListMailboxes("A06", "", ("INBOX", "Drafts", "Sent/%"), extended=True),
    ),
    (
        "RFC 6154 LIST RETURN (SPECIAL-USE)",
        b't2 LIST "" "%" RETURN (SPECIAL-USE)\r\n',
        ListMailboxes("t2", "", ("%",), return_options=frozenset({"SPECIAL-USE"}), extended=True),
    ),
    # RFC 4731 §3
    (
        "RFC 4731 UID SEARCH RETURN (MIN MAX)",
        b"A285 UID SEARCH RETURN (MIN MAX) 1:5000\r\n",
        Search("A285", SetKey(seq("1:5000"), uid=False), uid=True, return_options=("MIN", "MAX")),
    ),
    (
        "RFC 4731 SEARCH RETURN (ALL)",
        b"A286 SEARCH RETURN (ALL) 1:500\r\n",
        Search("A286", SetKey(seq("1:500"), uid=False), uid=False, return_options=("ALL",)),
    ),
]


@pytest.mark.parametrize(
    ("wire", "expected"),
    [pytest.param(wire, expected, id=name) for name, wire, expected in RFC_EXAMPLES],
)
def test_rfc_examples(wire: bytes, expected: Command) -> None:
    assert parse(wire) == expected


@pytest.mark.parametrize(
    "wire", [pytest.param(wire, id=name) for name, wire, _expected in RFC_EXAMPLES]
)
def test_rfc_examples_with_trailing_text_are_refused(wire: bytes) -> None:
    assert_trailing_text_refused(wire)


@pytest.mark.parametrize(
    "wire", [pytest.param(wire, id=name) for name, wire, _expected in RFC_EXAMPLES]
)
def test_rfc_examples_cut_short_are_refused(wire: bytes) -> None:
    # Every proper prefix (ended with CRLF) of a command is not the same command.
    whole = parse(wire)
    for end in range(1, len(wire) - 2):
        try:
            shorter = parse(wire[:end] + b"\r\n")
        except CommandError as error:
            assert error.status in ("BAD", "NO")
        else:
            # only CREATE's declared delimiter may go without changing the command
            assert shorter != whole or wire[end:-2] == b"/"


@pytest.mark.parametrize(
    ("wire", "word"),
    [
        (b"a SELECT INBOX\r\n", "SELECT"),
        (b"a EXAMINE INBOX\r\n", "EXAMINE"),
        (b"a DELETE x\r\n", "DELETE"),
        (b"a SUBSCRIBE x\r\n", "SUBSCRIBE"),
        (b"a UNSUBSCRIBE x\r\n", "UNSUBSCRIBE"),
        (b'a LIST "" *\r\n', "LIST"),
        (b'a LSUB "" *\r\n', "LSUB"),
        (b"a COPY 1 x\r\n", "COPY"),
        (b"a UID MOVE 1 x\r\n", "MOVE"),
        (b"a UID EXPUNGE 1\r\n", "EXPUNGE"),
        (b"a UID FETCH 1 UID\r\n", "FETCH"),
        (b"a UID SEARCH ALL\r\n", "SEARCH"),
        (b"a UID STORE 1 FLAGS ()\r\n", "STORE"),
        (b"a NOOP\r\n", "NOOP"),
        (b"a ID NIL\r\n", "ID"),
        (b"a RENAME a b\r\n", "RENAME"),
        (b"a APPEND x {1}\r\nx\r\n", "APPEND"),
        (b"a LOGIN u p\r\n", "LOGIN"),
        (b"a AUTHENTICATE PLAIN\r\n", "AUTHENTICATE"),
        (b"a ENABLE X\r\n", "ENABLE"),
        (b"a STATUS x (MESSAGES)\r\n", "STATUS"),
        (b"a CREATE x\r\n", "CREATE"),
    ],
)
def test_command_word_is_the_state_table_name(wire: bytes, word: str) -> None:
    assert command_word(parse(wire)) == word
