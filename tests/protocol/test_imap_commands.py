"""Commands as values: ``CommandParser`` with ``GrammarReader``, FETCH items and SEARCH keys.

The wire forms are the examples of RFC 9051 §6 and RFC 3501 §6 (one or more
per command) and of the extensions handled: LIST-EXTENDED (RFC 5258),
LIST-STATUS (RFC 5819), CREATE-SPECIAL-USE (RFC 6154), MULTIAPPEND
(RFC 3502), BINARY (RFC 3516), ESEARCH (RFC 4731), SASL-IR (RFC 4959), ID
(RFC 2971), UIDPLUS (RFC 4315), MOVE (RFC 6851). Every refusal is a
``CommandError`` that carries the tag, and garbage raises nothing else.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.imap.commands import (
    MAX_APPEND_MESSAGES,
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
from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.fetch_items import MAX_PART_DEPTH, FetchItem, Section
from postoffice.protocol.imap.parser import CommandError, CommandParser
from postoffice.protocol.imap.reader import MAX_NESTING, GrammarReader
from postoffice.protocol.imap.search_keys import (
    MAX_DEPTH,
    MAX_KEYS,
    AllKey,
    AndKey,
    DateKey,
    FlagKey,
    HeaderKey,
    NotKey,
    OrKey,
    RecentKey,
    SearchKey,
    SetKey,
    SizeKey,
    TextKey,
)
from postoffice.protocol.imap.sequence import SAVED, STAR, SequenceSet


def parse(wire: bytes | str, *, utf8: bool = False) -> Command:
    parser = CommandParser()
    parser.utf8 = utf8
    return parser.parse(wire.encode() if isinstance(wire, str) else wire)


def refused(wire: bytes | str, *, utf8: bool = False) -> CommandError:
    with pytest.raises(CommandError) as caught:
        parse(wire, utf8=utf8)
    return caught.value


def seq(text: str) -> SequenceSet:
    return SequenceSet.parse(text)


# RFC 3501 §6.3.11 / RFC 9051 §6.3.12: the APPEND example message (310 octets).
FRED = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.COM>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.siam.edu\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)
JOE = (
    b"Date: Mon, 7 Feb 1994 22:43:04 -0800 (PST)\r\n"
    b"From: Joe Mooch <mooch@OWATAGU.example.net>\r\n"
    b"Subject: Re: afternoon meeting\r\n"
    b"\r\n"
    b"3:30 is fine with me.\r\n"
)
PST = timezone(-timedelta(hours=8))

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
    error = refused(wire[:-2] + b" )\r\n")
    assert error.tag == parse(wire).tag
    assert error.status == "BAD"


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
    assert "CONDSTORE" in str(refused(b"A SELECT INBOX (CONDSTORE)\r\n"))


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


# --- refusals: CommandError with the tag -------------------------------------------

SYNTAX_ERRORS: list[tuple[bytes, str | None]] = [
    # no tag
    (b"\r\n", None),
    (b" NOOP\r\n", None),
    (b"+ NOOP\r\n", None),
    (b"* NOOP\r\n", None),
    (b"(a) NOOP\r\n", None),
    (b'"a" NOOP\r\n', None),
    (b"\xff NOOP\r\n", None),
    # missing arguments
    (b"A1\r\n", "A1"),
    (b"A1 \r\n", "A1"),
    (b"A1 LOGIN\r\n", "A1"),
    (b"A1 LOGIN a\r\n", "A1"),
    (b"A1 SELECT\r\n", "A1"),
    (b"A1 RENAME a\r\n", "A1"),
    (b"A1 FETCH 1\r\n", "A1"),
    (b"A1 FETCH\r\n", "A1"),
    (b"A1 STORE 1 FLAGS\r\n", "A1"),
    (b"A1 STORE 1\r\n", "A1"),
    (b"A1 COPY 1\r\n", "A1"),
    (b"A1 SEARCH\r\n", "A1"),
    (b"A1 UID EXPUNGE\r\n", "A1"),
    (b"A1 UID\r\n", "A1"),
    (b"A1 ENABLE\r\n", "A1"),
    (b"A1 AUTHENTICATE\r\n", "A1"),
    (b"A1 ID\r\n", "A1"),
    (b'A1 ID ("a")\r\n', "A1"),
    # trailing garbage
    (b"A1 NOOP x\r\n", "A1"),
    (b"A1 NOOP \r\n", "A1"),
    (b"A1 LOGIN a b c\r\n", "A1"),
    (b"A1 SELECT INBOX INBOX\r\n", "A1"),
    (b"A1 FETCH 1 FLAGS)\r\n", "A1"),
    (b"A1 FETCH 1 BODY[] FLAGS\r\n", "A1"),
    (b"A1 AUTHENTICATE PLAIN a b\r\n", "A1"),
    (b"A1 AUTHENTICATE PLAIN ab$\r\n", "A1"),
    (b"A1 ID x\r\n", "A1"),
    (b"A1  NOOP\r\n", "A1"),
    # bad sequence sets
    (b"A1 FETCH 0 FLAGS\r\n", "A1"),
    (b"A1 FETCH 1: FLAGS\r\n", "A1"),
    (b"A1 FETCH 1:5, FLAGS\r\n", "A1"),
    (b"A1 FETCH ,1 FLAGS\r\n", "A1"),
    (b"A1 FETCH 01 FLAGS\r\n", "A1"),
    (b"A1 FETCH 4294967296 FLAGS\r\n", "A1"),
    (b"A1 FETCH x FLAGS\r\n", "A1"),
    (b"A1 STORE 1::2 FLAGS ()\r\n", "A1"),
    (b"A1 COPY *:0 x\r\n", "A1"),
    (b"A1 UID EXPUNGE 1,,2\r\n", "A1"),
    # unknown commands
    (b"A442 XPIG-LATIN\r\n", "A442"),
    (b"A1 FOO bar\r\n", "A1"),
    (b"A1 UID FOO 1\r\n", "A1"),
    (b"A1 UID CAPABILITY\r\n", "A1"),
    (b"A1 UID SELECT INBOX\r\n", "A1"),
    # unknown fetch items
    (b"A1 FETCH 1 FOO\r\n", "A1"),
    (b"A1 FETCH 1 (FLAGS FOO)\r\n", "A1"),
    (b"A1 FETCH 1 ()\r\n", "A1"),
    (b"A1 FETCH 1 (ALL)\r\n", "A1"),  # a macro is not a fetch-att
    (b"A1 FETCH 1 ALLX\r\n", "A1"),
    (b"A1 FETCH 1 RFC822.PEEK\r\n", "A1"),
    # bad flags
    (b"A1 STORE 1 +X (\\Seen)\r\n", "A1"),
    (b"A1 STORE 1 FLAGS (\\Seen\r\n", "A1"),
    (b"A1 STORE 1 FLAGS (\\*)\r\n", "A1"),
    # bad CREATE parameters
    (b"A1 CREATE a (FOO (x))\r\n", "A1"),
    (b"A1 CREATE a (USE (\\Drafts)\r\n", "A1"),
    (b"A1 CREATE a (USE \\Drafts)\r\n", "A1"),
    # a literal that announces more than there is
    (b"A1 LOGIN {50}\r\nabc\r\n", "A1"),
]


@pytest.mark.parametrize(("wire", "tag"), SYNTAX_ERRORS)
def test_syntax_errors_carry_the_tag(wire: bytes, tag: str | None) -> None:
    error = refused(wire)
    assert isinstance(error, ImapSyntaxError)
    assert (error.tag, error.status, error.code) == (tag, "BAD", None)
    assert str(error)  # the text of the BAD


def test_unknown_command_is_named() -> None:
    assert str(refused(b"A442 XPIG-LATIN\r\n")) == "unknown command XPIG-LATIN"
    assert str(refused(b"A1 FOO bar\r\n")) == "unknown command FOO"
    assert "FOO" in str(refused(b"A1 UID FOO 1\r\n"))


def test_command_without_crlf_is_a_command_error() -> None:
    error = refused(b"A1 NOOP")
    assert (error.tag, error.status) == (None, "BAD")


def test_unsupported_charset_is_no_badcharset() -> None:
    # RFC 9051 §6.4.4: NO [BADCHARSET (...)], not BAD
    for charset in (b"KOI8-R", b'"ISO-8859-1"', b"{6}\r\nx-\xffyz"):
        error = refused(b"A286 SEARCH CHARSET " + charset + b" TEXT hello\r\n")
        assert (error.tag, error.status) == ("A286", "NO")
        assert error.code == "BADCHARSET (US-ASCII UTF-8)"


@pytest.mark.parametrize("charset", [b"US-ASCII", b"us-ascii", b"UTF-8", b"utf-8", b'"UTF-8"'])
def test_supported_charsets(charset: bytes) -> None:
    command = parse(b"A SEARCH CHARSET " + charset + b" SEEN\r\n")
    assert isinstance(command, Search)
    assert command.charset == charset.strip(b'"').decode().upper()


def test_search_strings_are_decoded_with_the_charset() -> None:
    utf8 = parse(b"A SEARCH CHARSET UTF-8 SUBJECT {5}\r\ncaf\xc3\xa9\r\n")
    assert utf8 == Search("A", HeaderKey("Subject", "café"), uid=False, charset="UTF-8")
    assert refused(b"A SEARCH CHARSET UTF-8 SUBJECT {2}\r\n\xff\xfe\r\n").status == "BAD"
    assert refused(b"A SEARCH SUBJECT {2}\r\n\xc3\xa9\r\n").status == "BAD"  # US-ASCII
    # After ENABLE UTF8=ACCEPT, strings are UTF-8 whatever CHARSET says (RFC 6855 §3).
    enabled = parse('A SEARCH SUBJECT "café"\r\n'.encode(), utf8=True)
    assert enabled == Search("A", HeaderKey("Subject", "café"), uid=False, charset="UTF-8")


def test_search_return_and_charset_together() -> None:
    command = parse(b"A SEARCH RETURN (MIN MAX COUNT ALL) CHARSET UTF-8 SEEN\r\n")
    assert command == Search(
        "A", FlagKey("\\Seen", True), False, "UTF-8", ("MIN", "MAX", "COUNT", "ALL")
    )
    assert refused(b"A SEARCH RETURN SEEN\r\n").status == "BAD"
    assert refused(b"A SEARCH RETURN (MIN\r\n").status == "BAD"
    assert refused(b"A SEARCH CHARSET UTF-8\r\n").status == "BAD"


# --- FETCH items ---------------------------------------------------------------------


def fetch_items(text: str) -> tuple[FetchItem, ...]:
    command = parse(f"A FETCH 1 {text}\r\n")
    assert isinstance(command, Fetch)
    return command.items


FETCH_ITEMS: list[tuple[str, FetchItem, bytes]] = [
    ("FLAGS", FetchItem("FLAGS"), b"FLAGS"),
    ("INTERNALDATE", FetchItem("INTERNALDATE"), b"INTERNALDATE"),
    ("RFC822", FetchItem("RFC822"), b"RFC822"),
    ("RFC822.HEADER", FetchItem("RFC822.HEADER"), b"RFC822.HEADER"),
    ("RFC822.SIZE", FetchItem("RFC822.SIZE"), b"RFC822.SIZE"),
    ("RFC822.TEXT", FetchItem("RFC822.TEXT"), b"RFC822.TEXT"),
    ("ENVELOPE", FetchItem("ENVELOPE"), b"ENVELOPE"),
    ("BODY", FetchItem("BODY"), b"BODY"),
    ("BODYSTRUCTURE", FetchItem("BODYSTRUCTURE"), b"BODYSTRUCTURE"),
    ("UID", FetchItem("UID"), b"UID"),
    ("BODY[]", FetchItem("BODY", Section()), b"BODY[]"),
    ("BODY[HEADER]", FetchItem("BODY", Section((), "HEADER")), b"BODY[HEADER]"),
    ("BODY[TEXT]", FetchItem("BODY", Section((), "TEXT")), b"BODY[TEXT]"),
    ("BODY[1]", FetchItem("BODY", Section((1,))), b"BODY[1]"),
    ("BODY[1.2.3]", FetchItem("BODY", Section((1, 2, 3))), b"BODY[1.2.3]"),
    ("BODY[1.2.MIME]", FetchItem("BODY", Section((1, 2), "MIME")), b"BODY[1.2.MIME]"),
    ("BODY[4.2.2.1.TEXT]", FetchItem("BODY", Section((4, 2, 2, 1), "TEXT")), b"BODY[4.2.2.1.TEXT]"),
    (
        "BODY[3.HEADER.FIELDS (A B)]",
        FetchItem("BODY", Section((3,), "HEADER.FIELDS", ("A", "B"))),
        b"BODY[3.HEADER.FIELDS (A B)]",
    ),
    (
        "BODY[HEADER.FIELDS.NOT (x)]",
        FetchItem("BODY", Section((), "HEADER.FIELDS.NOT", ("X",))),
        b"BODY[HEADER.FIELDS.NOT (X)]",
    ),
    (
        'BODY[HEADER.FIELDS ("Subject" {4}\r\nDate)]',
        FetchItem("BODY", Section((), "HEADER.FIELDS", ("SUBJECT", "DATE"))),
        b"BODY[HEADER.FIELDS (SUBJECT DATE)]",
    ),
    (
        "BODY.PEEK[]<0.100>",
        FetchItem("BODY", Section(), peek=True, partial=(0, 100)),
        b"BODY[]<0>",  # RFC 9051 §7.5.2: the origin only, no .PEEK
    ),
    (
        "BODY.PEEK[1.2.TEXT]<10.20>",
        FetchItem("BODY", Section((1, 2), "TEXT"), peek=True, partial=(10, 20)),
        b"BODY[1.2.TEXT]<10>",
    ),
    (
        "BODY[HEADER]<5.1>",
        FetchItem("BODY", Section((), "HEADER"), partial=(5, 1)),
        b"BODY[HEADER]<5>",
    ),
    ("body.peek[header]", FetchItem("BODY", Section((), "HEADER"), peek=True), b"BODY[HEADER]"),
    ("BINARY[1]<5.10>", FetchItem("BINARY", Section((1,)), partial=(5, 10)), b"BINARY[1]<5>"),
    ("BINARY.PEEK[]", FetchItem("BINARY", Section(), peek=True), b"BINARY[]"),
    ("BINARY[1.2]", FetchItem("BINARY", Section((1, 2))), b"BINARY[1.2]"),
    ("BINARY.SIZE[2]", FetchItem("BINARY.SIZE", Section((2,))), b"BINARY.SIZE[2]"),
    ("BINARY.SIZE[]", FetchItem("BINARY.SIZE", Section()), b"BINARY.SIZE[]"),
]


@pytest.mark.parametrize(
    ("text", "item", "name"), [pytest.param(*case, id=case[0]) for case in FETCH_ITEMS]
)
def test_fetch_item_and_its_response_name(text: str, item: FetchItem, name: bytes) -> None:
    assert fetch_items(text) == (item,)
    assert fetch_items(f"({text})") == (item,)
    assert item.response_name() == name


def test_all_fetch_items_in_one_list() -> None:
    text = " ".join(case[0] for case in FETCH_ITEMS)
    assert fetch_items(f"({text})") == tuple(case[1] for case in FETCH_ITEMS)


@pytest.mark.parametrize(
    ("macro", "names"),
    [
        ("ALL", ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE")),
        ("FAST", ("FLAGS", "INTERNALDATE", "RFC822.SIZE")),
        ("FULL", ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")),
        ("fast", ("FLAGS", "INTERNALDATE", "RFC822.SIZE")),
    ],
)
def test_fetch_macros(macro: str, names: tuple[str, ...]) -> None:
    # RFC 9051 §6.4.5
    assert fetch_items(macro) == tuple(FetchItem(name) for name in names)


@pytest.mark.parametrize(
    ("text", "sets_seen"),
    [
        ("BODY[]", True),
        ("BODY.PEEK[]", False),
        ("BODY[1.MIME]", True),
        ("BINARY[1]", True),
        ("BINARY.PEEK[1]", False),
        ("BINARY.SIZE[1]", False),
        ("RFC822", True),
        ("RFC822.TEXT", True),
        ("RFC822.HEADER", False),
        ("BODY", False),
        ("BODYSTRUCTURE", False),
        ("FLAGS", False),
    ],
)
def test_which_items_set_seen(text: str, sets_seen: bool) -> None:
    # RFC 9051 §6.4.5 (and RFC 3501 for RFC822, RFC822.TEXT)
    (item,) = fetch_items(text)
    assert item.sets_seen is sets_seen


@pytest.mark.parametrize(
    "text",
    [
        "BODY[MIME]",  # MIME needs a part
        "BODY[0]",
        "BODY[1.0]",
        "BODY[01]",
        "BODY[1.]",
        "BODY[.TEXT]",
        "BODY[ TEXT]",
        "BODY[TEXT",
        "BODY[HEADERS]",
        "BODY[HEADER.FIELDS]",
        "BODY[HEADER.FIELDS ()]",
        "BODY[HEADER.FIELDS (A]",
        "BODY[HEADER.FIELDS.NOT]",
        "BODY[]<0.0>",  # the count is nz-number
        "BODY[]<5>",
        "BODY[]<1.2",
        "BODY[]<a.2>",
        "BINARY[1.TEXT]",  # BINARY takes part numbers only
        "BINARY[HEADER]",
        "BINARY.SIZE[1]<0.1>",
        "BODY.PEEK",
        "BINARY",
        "BINARY.PEEK",
        "BINARY.SIZE",
        "(FLAGS",
        "(FLAGS  UID)",
        "FASTER",
        "FLAGS UID",
    ],
)
def test_fetch_item_errors(text: str) -> None:
    error = refused(f"A FETCH 1 {text}\r\n")
    assert (error.tag, error.status) == ("A", "BAD")


def test_section_part_depth_is_bounded() -> None:
    deep = ".".join(["1"] * (MAX_PART_DEPTH + 1))
    assert "deep" in str(refused(f"A FETCH 1 BODY[{deep}]\r\n"))
    (item,) = fetch_items("BODY[" + ".".join(["1"] * MAX_PART_DEPTH) + "]")
    assert item.section == Section((1,) * MAX_PART_DEPTH)


# --- SEARCH keys -----------------------------------------------------------------------


def search_key(text: str | bytes) -> SearchKey:
    wire = text.encode() if isinstance(text, str) else text
    command = parse(b"A SEARCH " + wire + b"\r\n")
    assert isinstance(command, Search)
    return command.key


SEARCH_KEYS: list[tuple[str, SearchKey]] = [
    ("ALL", AllKey()),
    ("ANSWERED", FlagKey("\\Answered", True)),
    ("BCC fred", HeaderKey("Bcc", "fred")),
    ("BEFORE 1-Feb-1994", DateKey(False, "BEFORE", date(1994, 2, 1))),
    ("BODY hello", TextKey("BODY", "hello")),
    ('CC "Joe Mooch"', HeaderKey("Cc", "Joe Mooch")),
    ("DELETED", FlagKey("\\Deleted", True)),
    ("DRAFT", FlagKey("\\Draft", True)),
    ("FLAGGED", FlagKey("\\Flagged", True)),
    ("FROM Smith", HeaderKey("From", "Smith")),
    ("HEADER X-Mailer mutt", HeaderKey("X-Mailer", "mutt")),
    ('HEADER "Message-ID" ""', HeaderKey("Message-ID", "")),
    ("KEYWORD $Forwarded", FlagKey("$Forwarded", True)),
    ("LARGER 4096", SizeKey(True, 4096)),
    ("NEW", AndKey((RecentKey(True), FlagKey("\\Seen", False)))),
    ("NOT SEEN", NotKey(FlagKey("\\Seen", True))),
    ("OLD", RecentKey(False)),
    ("ON 07-Feb-1994", DateKey(False, "ON", date(1994, 2, 7))),
    ("OR SEEN FLAGGED", OrKey(FlagKey("\\Seen", True), FlagKey("\\Flagged", True))),
    ("RECENT", RecentKey(True)),
    ("SEEN", FlagKey("\\Seen", True)),
    ("SENTBEFORE 1-Jan-2000", DateKey(True, "BEFORE", date(2000, 1, 1))),
    ("SENTON 29-Feb-2024", DateKey(True, "ON", date(2024, 2, 29))),
    ("SENTSINCE 31-Dec-1999", DateKey(True, "SINCE", date(1999, 12, 31))),
    ("SINCE 1-Feb-1994", DateKey(False, "SINCE", date(1994, 2, 1))),
    ("SMALLER 100", SizeKey(False, 100)),
    ("SUBJECT {9}\r\nafternoon", HeaderKey("Subject", "afternoon")),
    ('TEXT "string not in mailbox"', TextKey("TEXT", "string not in mailbox")),
    ("TO mooch@owatagu.siam.edu", HeaderKey("To", "mooch@owatagu.siam.edu")),
    ("UID 4827313:4828442", SetKey(seq("4827313:4828442"), uid=True)),
    ("UNANSWERED", FlagKey("\\Answered", False)),
    ("UNDELETED", FlagKey("\\Deleted", False)),
    ("UNDRAFT", FlagKey("\\Draft", False)),
    ("UNFLAGGED", FlagKey("\\Flagged", False)),
    ("UNKEYWORD $Junk", FlagKey("$Junk", False)),
    ("UNSEEN", FlagKey("\\Seen", False)),
    ("2,4:7,9,12:*", SetKey(seq("2,4:7,9,12:*"), uid=False)),
    ("*", SetKey(SequenceSet(((STAR, STAR),)), uid=False)),
    ('SINCE "1-Feb-1994"', DateKey(False, "SINCE", date(1994, 2, 1))),
    ('BEFORE "01-feb-1994"', DateKey(False, "BEFORE", date(1994, 2, 1))),
    ("(SEEN)", FlagKey("\\Seen", True)),
    ("(SEEN FLAGGED)", AndKey((FlagKey("\\Seen", True), FlagKey("\\Flagged", True)))),
    ("((((ALL))))", AllKey()),
    ("seen", FlagKey("\\Seen", True)),
    ("LARGER 9223372036854775807", SizeKey(True, 2**63 - 1)),
]


@pytest.mark.parametrize(("text", "key"), [pytest.param(*case, id=case[0]) for case in SEARCH_KEYS])
def test_search_key(text: str, key: SearchKey) -> None:
    assert search_key(text) == key


def test_every_search_key_in_one_command() -> None:
    text = " ".join(case[0] for case in SEARCH_KEYS)
    assert search_key(text) == AndKey(tuple(case[1] for case in SEARCH_KEYS))


def test_search_or_with_groups() -> None:
    # RFC 4731 style: OR of two parenthesised conjunctions
    assert search_key('OR (FROM "a" SUBJECT "b") (TO c HEADER "X-Foo" "")') == OrKey(
        AndKey((HeaderKey("From", "a"), HeaderKey("Subject", "b"))),
        AndKey((HeaderKey("To", "c"), HeaderKey("X-Foo", ""))),
    )
    assert search_key("OR OR SEEN DRAFT NOT 1:5") == OrKey(
        OrKey(FlagKey("\\Seen", True), FlagKey("\\Draft", True)),
        NotKey(SetKey(seq("1:5"), uid=False)),
    )


@pytest.mark.parametrize(
    "text",
    [
        "FOO",
        "MODSEQ 5",  # CONDSTORE is not announced
        "$5",  # $ stands alone (RFC 5182 §3: seq-set or "$")
        "UID $1",
        "()",
        "(SEEN",
        "SEEN)",
        "SEEN  FLAGGED",
        "OR SEEN",
        "NOT",
        "HEADER X",
        "KEYWORD",
        "KEYWORD \\Seen",  # a system flag is no keyword
        "LARGER",
        "LARGER x",
        "LARGER -1",
        "LARGER 9223372036854775808",
        "LARGER " + "9" * 5000,  # longer than int() reads
        "SINCE 31-Feb-2000",
        "SINCE 1-Feb-94",
        "SINCE 1-Fbr-1994",
        'SINCE "1-Feb-1994',
        "SINCE",
        "UID",
        "UID x",
        "0",
        "1:0",
        "1,",
        "FROM",
    ],
)
def test_search_key_errors(text: str) -> None:
    error = refused(f"A SEARCH {text}\r\n")
    assert (error.tag, error.status) == ("A", "BAD")


def test_search_nesting_is_bounded() -> None:
    deep = "(" * MAX_NESTING + "ALL" + ")" * MAX_NESTING
    assert search_key(deep) == AllKey()
    deeper = "(" * (MAX_NESTING + 1) + "ALL" + ")" * (MAX_NESTING + 1)
    assert "nested" in str(refused(f"A SEARCH {deeper}\r\n"))


def test_search_not_and_or_depth_is_bounded() -> None:
    key = search_key("NOT " * MAX_DEPTH + "ALL")
    for _ in range(MAX_DEPTH):
        assert isinstance(key, NotKey)
        key = key.key
    assert key == AllKey()
    for text in (
        "NOT " * (MAX_DEPTH + 1) + "ALL",
        "OR " * (MAX_DEPTH + 1) + "ALL " * (MAX_DEPTH + 2),
    ):
        error = refused(f"A SEARCH {text.strip()}\r\n")
        assert (error.tag, error.status) == ("A", "BAD")
    # Far past the interpreter's recursion limit: still a BAD, not a RecursionError.
    error = refused("A SEARCH " + "NOT " * 5000 + "ALL\r\n")
    assert (error.tag, error.status) == ("A", "BAD")


def test_numbers_may_have_leading_zeros() -> None:
    # RFC 9051 §9 number = 1*DIGIT: the zeros do not count against the range.
    assert search_key("SMALLER " + "0" * 5000 + "1") == SizeKey(False, 1)


def test_search_key_count_is_bounded() -> None:
    assert isinstance(search_key(" ".join(["SEEN"] * MAX_KEYS)), AndKey)
    error = refused("A SEARCH " + " ".join(["SEEN"] * (MAX_KEYS + 1)) + "\r\n")
    assert "too many search keys" in str(error)
    # NOT and OR count their operands
    error = refused("A SEARCH " + " ".join(["NOT SEEN"] * (MAX_KEYS // 2 + 1)) + "\r\n")
    assert "too many search keys" in str(error)


# --- GrammarReader: each rule whole and with trailing text --------------------------


def reader(text: bytes) -> GrammarReader:
    return GrammarReader(text + b"\r\n")


@pytest.mark.parametrize("trailing", [b"", b" rest", b")"])
def test_reader_tokens_stop_where_their_rule_ends(trailing: bytes) -> None:
    cases: list[tuple[bytes, str, object]] = [
        (b"a.1", "tag", "a.1"),
        (b"FOO-BAR", "atom", "FOO-BAR"),
        (b"fetch", "keyword", "FETCH"),
        (b"4294967295", "number", 4294967295),
        (b"17", "nz_number", 17),
        (b'"a \\"q\\" \\\\"', "quoted", b'a "q" \\'),
        (b"{3}\r\na b", "literal", b"a b"),
        (b"{3+}\r\n)\r\n", "literal", b")\r\n"),
        (b'"s"', "string", b"s"),
        (b'{1}\r\n"', "string", b'"'),
        (b"IN]BOX", "astring", b"IN]BOX"),
        (b'""', "astring", b""),
        (b"NIL", "nstring", None),
        (b'"NIL"', "nstring", b"NIL"),
        (b"%a*", "list_mailbox", b"%a*"),
        (b'"%"', "list_mailbox", b"%"),
    ]
    for token, method, value in cases:
        cursor = reader(token + trailing)
        assert getattr(cursor, method)() == value, (token, method)
        assert cursor.remaining() == trailing, (token, method)
        assert cursor.at_end() is (trailing == b"")


@pytest.mark.parametrize(
    ("text", "method"),
    [
        (b"+a", "tag"),
        (b"(a", "atom"),
        (b"", "atom"),
        (b"]", "atom"),
        (b"x", "number"),
        (b"4294967296", "number"),
        (b"0", "nz_number"),
        (b"012", "nz_number"),
        (b'"abc', "quoted"),
        (b'"a\r\nb"', "quoted"),
        (b'"a\\b"', "quoted"),
        (b'"\xc3\xa9"', "quoted"),
        (b"{5}\r\nab", "literal"),
        (b"{3}ab", "literal"),
        (b"~{1}\r\nx", "literal"),
        (b"{2}\r\n\x00x", "literal"),
        (b"abc", "string"),
        (b"(", "astring"),
        (b"%", "astring"),
        (b"x", "nstring"),
        (b"(", "list_mailbox"),
    ],
)
def test_reader_refusals(text: bytes, method: str) -> None:
    with pytest.raises(ImapSyntaxError):
        getattr(reader(text), method)()


def test_reader_quoted_utf8_only_when_enabled() -> None:
    assert GrammarReader(b'"\xc3\xa9"\r\n', utf8=True).quoted() == b"\xc3\xa9"
    with pytest.raises(ImapSyntaxError):
        GrammarReader(b'"\xc3\xa9"\r\n').quoted()


def test_reader_literal8_only_when_asked() -> None:
    cursor = reader(b"~{3}\r\n\x00\x01\x02")
    assert cursor.is_literal8() is True
    assert cursor.literal(binary=True) == b"\x00\x01\x02"
    assert cursor.at_end()


def test_reader_literal_may_not_run_past_the_command() -> None:
    with pytest.raises(ImapSyntaxError):
        reader(b"{10}\r\nabc").literal()


def test_reader_sp_peek_accept_expect_end() -> None:
    cursor = reader(b"UID  FETCH")
    assert cursor.peek(b"uid") is True
    assert cursor.accept(b"UID") is True
    assert cursor.accept(b"UID") is False
    cursor.sp()  # one space a call
    with pytest.raises(ImapSyntaxError):
        cursor.expect(b"FETCH")
    with pytest.raises(ImapSyntaxError):
        cursor.end()
    cursor.sp()
    with pytest.raises(ImapSyntaxError):
        cursor.sp()
    cursor.expect(b"fetch")
    cursor.end()
    with pytest.raises(ImapSyntaxError):
        cursor.sp()  # never past the final CRLF
    assert cursor.peek(b"\r\n") is False


def test_reader_text_until_end() -> None:
    cursor = reader(b"abc def")
    cursor.pos = 4
    assert cursor.text_until_end() == b"def"
    cursor.end()


def test_reader_lists_and_nesting_limit() -> None:
    cursor = reader(b"(a b)")
    cursor.open_list()
    assert cursor.atom() == "a"
    assert cursor.list_separator() is True
    assert cursor.atom() == "b"
    assert cursor.list_separator() is False
    cursor.end()
    cursor = reader(b"(" * MAX_NESTING)
    for _ in range(MAX_NESTING):
        cursor.open_list()
    cursor = reader(b"(" * (MAX_NESTING + 1))
    with pytest.raises(ImapSyntaxError):
        for _ in range(MAX_NESTING + 1):
            cursor.open_list()


def test_reader_requires_crlf() -> None:
    with pytest.raises(ImapSyntaxError):
        GrammarReader(b"a NOOP")


# --- garbage in: only ImapSyntaxError out ---------------------------------------------

TOKENS = [
    "A1",
    "a",
    "UID",
    "FETCH",
    "SEARCH",
    "STORE",
    "APPEND",
    "LIST",
    "LSUB",
    "LOGIN",
    "SELECT",
    "CREATE",
    "STATUS",
    "ID",
    "AUTHENTICATE",
    "ENABLE",
    "COPY",
    "MOVE",
    "EXPUNGE",
    "RETURN",
    "CHARSET",
    "UTF-8",
    "KOI8-R",
    "NOT",
    "OR",
    "ALL",
    "FULL",
    "HEADER",
    "SINCE",
    "1-Feb-1994",
    '" 1-Jul-2002 22:30:15 -0700"',
    "LARGER",
    "KEYWORD",
    "1:*",
    "*",
    "0",
    "4294967296",
    "99999999999999999999999",
    "(",
    ")",
    "()",
    "[",
    "]",
    "<",
    ">",
    "<0.10>",
    "BODY[",
    "BODY.PEEK[",
    "BINARY[",
    "HEADER.FIELDS",
    "MIME",
    "1.2",
    ".",
    '""',
    '"x\\"y"',
    '"\\',
    "{0}\r\n",
    "{3}\r\nabc",
    "{5+}\r\n",
    "~{2}\r\n\x00\x01",
    "{99}\r\n",
    "\\Seen",
    "+FLAGS",
    "FLAGS.SILENT",
    "NIL",
    "USE",
    "%",
    "&AMQ-",
    "&",
    "\x00",
    "é",
    "\r\n",
]


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=200), crlf=st.booleans(), utf8=st.booleans())
def test_arbitrary_text_raises_only_syntax_errors(text: str, crlf: bool, utf8: bool) -> None:
    wire = text.encode("utf-8", "surrogatepass") + (b"\r\n" if crlf else b"")
    try:
        parse(wire, utf8=utf8)
    except CommandError as error:
        assert error.status in ("BAD", "NO")
    except ImapSyntaxError:  # pragma: no cover - parse wraps every refusal
        pytest.fail("parse raised an ImapSyntaxError that is not a CommandError")


@settings(max_examples=600, deadline=None)
@given(
    words=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=25),
    separators=st.lists(st.sampled_from([" ", "", "  "]), min_size=25, max_size=25),
    utf8=st.booleans(),
)
def test_grammar_soup_raises_only_syntax_errors(
    words: list[str], separators: list[str], utf8: bool
) -> None:
    text = "".join(word + sep for word, sep in zip(words, separators, strict=False))
    wire = text.encode("utf-8") + b"\r\n"
    try:
        command = parse(wire, utf8=utf8)
    except CommandError as error:
        assert error.status in ("BAD", "NO")
        assert error.tag is None or wire.startswith(error.tag.encode())
    else:
        assert wire.startswith(command.tag.encode() + b" ")


def test_saved_result_stands_where_a_sequence_set_may() -> None:
    # RFC 5182 §3 / RFC 9051 §6.4.4.1: "$" in FETCH, STORE, COPY, MOVE, UID EXPUNGE
    # and as a search key, with and without UID.
    assert parse(b"a FETCH $ (FLAGS)\r\n") == Fetch("a", SAVED, (FetchItem("FLAGS"),), uid=False)
    assert search_key("$") == SetKey(SAVED, uid=False)
    assert search_key("UID $") == SetKey(SAVED, uid=True)
    assert parse(b"a UID EXPUNGE $\r\n") == UidExpunge("a", SAVED)
    assert refused(b"a FETCH $1 (FLAGS)\r\n").status == "BAD"
