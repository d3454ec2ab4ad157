"""FETCH and UID FETCH: every data item, the macros, \\Seen, and the errors
(RFC 9051 §6.4.5, §6.4.9, §7.5.2; RFC 3516 BINARY).

The INBOX holds, by number and UID: 1 MEETING, 2 MIXED, 3 UTF8, 4 SMALL, all
delivered at the world's clock, 14-Nov-2023 22:13:20 +0000.
"""

from __future__ import annotations

from .imap_harness import ImapClient, ImapWorld, s_literal
from .messages import (
    MEETING,
    MEETING_BODY,
    MIXED,
    MIXED_PART1_DECODED,
    MIXED_PART2_DECODED,
    SMALL,
    UNKNOWN_CTE,
    UTF8,
    header_of,
    text_of,
)

DATE = '"14-Nov-2023 22:13:20 +0000"'
MEETING_ENVELOPE = (
    '("Mon, 7 Feb 1994 21:52:25 -0800 (PST)" "afternoon meeting" '
    '(("Fred Foobar" NIL "foobar" "Blurdybloop.example")) '
    '(("Fred Foobar" NIL "foobar" "Blurdybloop.example")) '
    '(("Fred Foobar" NIL "foobar" "Blurdybloop.example")) '
    '((NIL NIL "mooch" "owatagu.siam.edu.example")) NIL NIL NIL '
    '"<B27397-0100000@Blurdybloop.example>")'
)
MIXED_ENVELOPE = (
    '("Tue, 3 Feb 2026 10:00:00 +0000" "the report" '
    '(("Carol" NIL "carol" "remote.test")) (("Carol" NIL "carol" "remote.test")) '
    '(("Carol" NIL "carol" "remote.test")) ((NIL NIL "alice" "example.test")) '
    '(("Dave" NIL "dave" "remote.test")) NIL NIL "<report@remote.test>")'
)
MEETING_BODY_STRUCTURE = '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1)'
PART1_MIME = (
    b"Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: base64\r\n\r\n"
)
PART1_BODY = b"SGVsbG8gd29ybGQhDQo="
PART2_MIME = (
    b'Content-Type: application/octet-stream; name="data.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="data.bin"\r\n\r\n'
)
PART2_BODY = b"AAECAwQ="
SEEN_END = r" FLAGS (\Seen))"  # ends a FETCH response that set \Seen


async def selected(world: ImapWorld, client: ImapClient, *, examine: bool = False) -> None:
    await world.deliver(MEETING, MIXED, UTF8, SMALL)
    await client.login()
    if examine:
        await client.command("S1 EXAMINE INBOX")
    else:
        await client.select()


async def test_fetch_flags_internaldate_size_uid(world: ImapWorld) -> None:
    """RFC 9051 §7.5.2: FLAGS, INTERNALDATE (date-time), RFC822.SIZE (the octets of the
    message as BODY[] returns it), UID; in the order asked."""
    async with world.connect() as client:
        await selected(world, client)
        await client.converse(rf"""
            C: a1 FETCH 1:4 (FLAGS INTERNALDATE RFC822.SIZE UID)
            S: * 1 FETCH (FLAGS () INTERNALDATE {DATE} RFC822.SIZE {len(MEETING)} UID 1)
            S: * 2 FETCH (FLAGS () INTERNALDATE {DATE} RFC822.SIZE {len(MIXED)} UID 2)
            S: * 3 FETCH (FLAGS () INTERNALDATE {DATE} RFC822.SIZE {len(UTF8)} UID 3)
            S: * 4 FETCH (FLAGS () INTERNALDATE {DATE} RFC822.SIZE {len(SMALL)} UID 4)
            S: a1 OK FETCH completed
            C: a2 FETCH * (UID RFC822.SIZE)
            S: * 4 FETCH (UID 4 RFC822.SIZE {len(SMALL)})
            S: a2 OK FETCH completed
        """)


async def test_fetch_envelope(world: ImapWorld) -> None:
    """RFC 9051 §7.5.2 ENVELOPE: date, subject, from, sender, reply-to, to, cc, bcc,
    in-reply-to, message-id; sender and reply-to default to from; header values are
    given as they are (RFC 2047 encoded words are not decoded)."""
    async with world.connect() as client:
        await selected(world, client)
        await client.converse(rf"""
            C: a1 FETCH 1:2 ENVELOPE
            S: * 1 FETCH (ENVELOPE {MEETING_ENVELOPE})
            S: * 2 FETCH (ENVELOPE {MIXED_ENVELOPE})
            S: a1 OK FETCH completed
            C: a2 FETCH 3 ENVELOPE
            S: * 3 FETCH (ENVELOPE ("Wed, 4 Feb 2026 12:00:00 +0100" "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=" (("=?UTF-8?Q?J=C3=B6rg?=" NIL "joerg" "remote.test")) *))
            S: a2 OK FETCH completed
        """)  # noqa: E501


async def test_fetch_body_and_bodystructure(world: ImapWorld) -> None:
    """RFC 9051 §7.5.2: BODY is BODYSTRUCTURE without extension data; a multipart
    lists its parts, then the subtype, then (BODYSTRUCTURE) its parameters,
    disposition, language and location; a single part adds MD5, disposition,
    language, location."""
    async with world.connect() as client:
        await selected(world, client)
        await client.converse(rf"""
            C: a1 FETCH 1 (BODY BODYSTRUCTURE)
            S: * 1 FETCH (BODY {MEETING_BODY_STRUCTURE} BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1 NIL NIL NIL NIL))
            S: a1 OK FETCH completed
            C: a2 FETCH 2 BODYSTRUCTURE
            S: * 2 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "BASE64" 20 * NIL NIL NIL NIL) ("APPLICATION" "OCTET-STREAM" ("NAME" "data.bin") NIL NIL "BASE64" 8 NIL ("ATTACHMENT" ("FILENAME" "data.bin")) NIL NIL) "MIXED" ("BOUNDARY" "XX") NIL NIL NIL))
            S: a2 OK FETCH completed
            C: a3 FETCH 2 BODY
            S: * 2 FETCH (BODY (("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "BASE64" 20 *) ("APPLICATION" "OCTET-STREAM" ("NAME" "data.bin") NIL NIL "BASE64" 8) "MIXED"))
            S: a3 OK FETCH completed
            C: a4 FETCH 3 BODYSTRUCTURE
            S: * 3 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "8BIT" {len(text_of(UTF8))} 1 NIL NIL NIL NIL))
            S: a4 OK FETCH completed
        """)  # noqa: E501


async def test_fetch_whole_message_items_set_seen(world: ImapWorld) -> None:
    """RFC 9051 §6.4.5: BODY[] (and RFC822, RFC 3501 §6.4.5) set \\Seen, and the changed
    FLAGS come with the FETCH response; RFC822.HEADER is BODY.PEEK[HEADER] and sets
    nothing; a message already seen gets no FLAGS."""
    async with world.connect() as client:
        await selected(world, client)
        await client.converse(rf"""
            C: a1 FETCH 4 RFC822.HEADER
            S: * 4 FETCH (RFC822.HEADER {{{len(header_of(SMALL))}}}
            {s_literal(header_of(SMALL), ")")}
            S: a1 OK FETCH completed
            C: a2 FETCH 4 BODY[]
            S: * 4 FETCH (BODY[] {{{len(SMALL)}}}
            {s_literal(SMALL, SEEN_END)}
            S: a2 OK FETCH completed
            C: a3 FETCH 4 RFC822
            S: * 4 FETCH (RFC822 {{{len(SMALL)}}}
            {s_literal(SMALL, ")")}
            S: a3 OK FETCH completed
            C: a4 FETCH 1 RFC822
            S: * 1 FETCH (RFC822 {{{len(MEETING)}}}
            {s_literal(MEETING, SEEN_END)}
            S: a4 OK FETCH completed
        """)


async def test_fetch_header_and_text(world: ImapWorld) -> None:
    """RFC 9051 §6.4.5 HEADER and TEXT (BODY.PEEK does not set \\Seen), and RFC 3501
    §6.4.5 RFC822.HEADER and RFC822.TEXT (which sets \\Seen, like BODY[TEXT])."""
    async with world.connect() as client:
        await selected(world, client)
        await client.converse(rf"""
            C: a1 FETCH 4 (BODY.PEEK[HEADER] BODY.PEEK[TEXT])
            S: * 4 FETCH (BODY[HEADER] {{{len(header_of(SMALL))}}}
            {s_literal(header_of(SMALL), f" BODY[TEXT] {{{len(text_of(SMALL))}}}")}
            {s_literal(text_of(SMALL), ")")}
            S: a1 OK FETCH completed
            C: a2 FETCH 4 (RFC822.HEADER)
            S: * 4 FETCH (RFC822.HEADER {{{len(header_of(SMALL))}}}
            {s_literal(header_of(SMALL), ")")}
            S: a2 OK FETCH completed
            C: a3 FETCH 4 FLAGS
            S: * 4 FETCH (FLAGS ())
            S: a3 OK FETCH completed
            C: a4 FETCH 4 RFC822.TEXT
            S: * 4 FETCH (RFC822.TEXT {{{len(text_of(SMALL))}}}
            {s_literal(text_of(SMALL), SEEN_END)}
            S: a4 OK FETCH completed
        """)


async def test_fetch_header_fields(world: ImapWorld) -> None:
    """RFC 9051 §6.4.5 HEADER.FIELDS and HEADER.FIELDS.NOT: the named fields (names
    case-insensitive), or all others, with the blank line that ends the header."""
    async with world.connect() as client:
        await selected(world, client)
        fields = (
            b"From: Fred Foobar <foobar@Blurdybloop.example>\r\nSubject: afternoon meeting\r\n\r\n"
        )
        others = b"Subject: lunch?\r\nX-Priority: 1\r\n\r\n"
        await client.converse(rf"""
            C: a1 FETCH 1 BODY.PEEK[HEADER.FIELDS (from SUBJECT)]
            S: * 1 FETCH (BODY[HEADER.FIELDS (FROM SUBJECT)] {{{len(fields)}}}
            {s_literal(fields, ")")}
            S: a1 OK FETCH completed
            C: a2 FETCH 4 BODY.PEEK[HEADER.FIELDS.NOT (From To Date Message-ID)]
            S: * 4 FETCH (BODY[HEADER.FIELDS.NOT (FROM TO DATE MESSAGE-ID)] {{{len(others)}}}
            {s_literal(others, ")")}
            S: a2 OK FETCH completed
            C: a3 FETCH 1 BODY.PEEK[HEADER.FIELDS (X-Not-There)]
            S: * 1 FETCH (BODY[HEADER.FIELDS (X-NOT-THERE)] {{2}}
            S:
            S: )
            S: a3 OK FETCH completed
        """)


async def test_fetch_parts_of_a_multipart(world: ImapWorld) -> None:
    """RFC 9051 §6.4.5: BODY[1] is the first part's body (transfer encoding left as is),
    BODY[1.MIME] its MIME header; BODY[1] of a single-part message is its body."""
    async with world.connect() as client:
        await selected(world, client)
        await client.converse(rf"""
            C: a1 FETCH 2 (BODY.PEEK[1] BODY.PEEK[1.MIME])
            S: * 2 FETCH (BODY[1] {{{len(PART1_BODY)}}}
            S: {PART1_BODY.decode()} BODY[1.MIME] {{{len(PART1_MIME)}}}
            {s_literal(PART1_MIME, ")")}
            S: a1 OK FETCH completed
            C: a2 FETCH 2 (BODY.PEEK[2] BODY.PEEK[2.MIME])
            S: * 2 FETCH (BODY[2] {{{len(PART2_BODY)}}}
            S: {PART2_BODY.decode()} BODY[2.MIME] {{{len(PART2_MIME)}}}
            {s_literal(PART2_MIME, ")")}
            S: a2 OK FETCH completed
            C: a3 FETCH 1 BODY.PEEK[1]
            S: * 1 FETCH (BODY[1] {{{len(MEETING_BODY)}}}
            {s_literal(MEETING_BODY, ")")}
            S: a3 OK FETCH completed
            C: a4 FETCH 2 BODY[1]
            S: * 2 FETCH (BODY[1] {{{len(PART1_BODY)}}}
            S: {PART1_BODY.decode()} FLAGS (\Seen))
            S: a4 OK FETCH completed
        """)


async def test_fetch_partial(world: ImapWorld) -> None:
    """RFC 9051 §6.4.5: <origin.count> returns that many octets from origin, and the
    response names only the origin; an origin past the end gives an empty string."""
    async with world.connect() as client:
        await selected(world, client)
        await client.converse(r"""
            C: a1 FETCH 1 BODY.PEEK[]<0.10>
            S: * 1 FETCH (BODY[]<0> {10}
            S: Date: Mon,)
            S: a1 OK FETCH completed
            C: a2 FETCH 1 BODY.PEEK[TEXT]<6.3>
            S: * 1 FETCH (BODY[TEXT]<6> {3}
            S: Joe)
            S: a2 OK FETCH completed
            C: a3 FETCH 1 BODY.PEEK[TEXT]<50.100>
            S: * 1 FETCH (BODY[TEXT]<50> {5}
            S: ow?
            S: )
            S: a3 OK FETCH completed
            C: a4 FETCH 1 BODY.PEEK[]<1000.10>
            S: * 1 FETCH (BODY[]<1000> {0}
            S: )
            S: a4 OK FETCH completed
        """)


async def test_fetch_binary(world: ImapWorld) -> None:
    """RFC 3516 §4.2: BINARY[part] is the part with its transfer encoding undone; a
    literal8 (``~{n}``) carries it when it holds NUL; BINARY.SIZE is its decoded size;
    BINARY.PEEK sets no \\Seen, BINARY does."""
    async with world.connect() as client:
        await selected(world, client)
        binary = MIXED_PART2_DECODED.decode("latin-1")
        await client.converse(rf"""
            C: a1 FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[1])
            S: * 2 FETCH (BINARY[1] {{{len(MIXED_PART1_DECODED)}}}
            {s_literal(MIXED_PART1_DECODED, f" BINARY.SIZE[1] {len(MIXED_PART1_DECODED)})")}
            S: a1 OK FETCH completed
            C: a2 FETCH 2 (BINARY.SIZE[2] BINARY.PEEK[2])
            S: * 2 FETCH (BINARY.SIZE[2] 5 BINARY[2] ~{{5}}
            S: {binary})
            S: a2 OK FETCH completed
            C: a3 FETCH 2 BINARY.PEEK[1]<6.5>
            S: * 2 FETCH (BINARY[1]<6> {{5}}
            S: world)
            S: a3 OK FETCH completed
            C: a4 FETCH 2 FLAGS
            S: * 2 FETCH (FLAGS ())
            S: a4 OK FETCH completed
            C: a5 FETCH 1 BINARY[1]
            S: * 1 FETCH (BINARY[1] {{{len(MEETING_BODY)}}}
            {s_literal(MEETING_BODY, SEEN_END)}
            S: a5 OK FETCH completed
        """)


async def test_fetch_binary_of_an_unknown_encoding(world: ImapWorld) -> None:
    """RFC 3516 §4.3: BINARY of a part whose transfer encoding the server cannot
    decode is NO [UNKNOWN-CTE]; BODY of it still works."""
    await world.deliver(UNKNOWN_CTE)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(rf"""
            C: a1 FETCH 1 BINARY.PEEK[1]
            S: a1 NO [UNKNOWN-CTE] *
            C: a2 FETCH 1 BODY.PEEK[1]
            S: * 1 FETCH (BODY[1] {{{len(text_of(UNKNOWN_CTE))}}}
            {s_literal(text_of(UNKNOWN_CTE), ")")}
            S: a2 OK FETCH completed
        """)


async def test_fetch_macros(world: ImapWorld) -> None:
    """RFC 9051 §6.4.5: ALL = (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE), FAST = (FLAGS
    INTERNALDATE RFC822.SIZE), FULL = ALL plus BODY."""
    size = len(MEETING)
    async with world.connect() as client:
        await selected(world, client)
        await client.converse(rf"""
            C: a1 FETCH 1 FAST
            S: * 1 FETCH (FLAGS () INTERNALDATE {DATE} RFC822.SIZE {size})
            S: a1 OK FETCH completed
            C: a2 FETCH 1 ALL
            S: * 1 FETCH (FLAGS () INTERNALDATE {DATE} RFC822.SIZE {size} ENVELOPE {MEETING_ENVELOPE})
            S: a2 OK FETCH completed
            C: a3 FETCH 1 FULL
            S: * 1 FETCH (FLAGS () INTERNALDATE {DATE} RFC822.SIZE {size} ENVELOPE {MEETING_ENVELOPE} BODY {MEETING_BODY_STRUCTURE})
            S: a3 OK FETCH completed
        """)  # noqa: E501


async def test_fetch_in_an_examined_mailbox_sets_no_seen(world: ImapWorld) -> None:
    """RFC 9051 §6.3.3: in a mailbox opened with EXAMINE nothing changes, so BODY[]
    does not set \\Seen (and no FLAGS come with it)."""
    async with world.connect() as client:
        await selected(world, client, examine=True)
        await client.converse(rf"""
            C: a1 FETCH 4 BODY[]
            S: * 4 FETCH (BODY[] {{{len(SMALL)}}}
            {s_literal(SMALL, ")")}
            S: a1 OK FETCH completed
            C: a2 FETCH 4 FLAGS
            S: * 4 FETCH (FLAGS ())
            S: a2 OK FETCH completed
        """)
    async with world.store() as store:
        assert (await store.status("INBOX")).unseen == 4


async def test_uid_fetch(world: ImapWorld) -> None:
    """RFC 9051 §6.4.9: UID FETCH takes UIDs and always returns UID; UIDs that do not
    exist are skipped without error, and n:* includes the last message even when n
    is above every UID."""
    async with world.connect() as client:
        await selected(world, client)
        await client.converse(r"""
            C: a1 UID FETCH 2:3 FLAGS
            S: * 2 FETCH (UID 2 FLAGS ())
            S: * 3 FETCH (UID 3 FLAGS ())
            S: a1 OK UID FETCH completed
            C: a2 UID FETCH 99 FLAGS
            S: a2 OK UID FETCH completed
            C: a3 UID FETCH 99:* (FLAGS UID)
            S: * 4 FETCH (FLAGS () UID 4)
            S: a3 OK UID FETCH completed
            C: a4 UID FETCH 1,3 RFC822.SIZE
            S: * 1 FETCH (UID 1 RFC822.SIZE *)
            S: * 3 FETCH (UID 3 RFC822.SIZE *)
            S: a4 OK UID FETCH completed
        """)


async def test_fetch_beyond_the_last_message_is_bad(world: ImapWorld) -> None:
    """RFC 9051 §9 (seq-number): a number above the messages in the mailbox is
    answered with a tagged BAD; so is 0. Nothing is fetched."""
    async with world.connect() as client:
        await selected(world, client)
        await client.converse("""
            C: a1 FETCH 5 FLAGS
            S: a1 BAD *
            C: a2 FETCH 3:5 FLAGS
            S: a2 BAD *
            C: a3 FETCH 0 FLAGS
            S: a3 BAD *
            C: a4 FETCH 1 BLURDY
            S: a4 BAD *
        """)


async def test_fetch_of_an_empty_mailbox(world: ImapWorld) -> None:
    """RFC 9051 §9: in an empty mailbox every message number is out of range (BAD),
    while UID FETCH 1:* simply finds nothing."""
    async with world.logged_in() as client:
        await client.select()
        await client.converse("""
            C: a1 FETCH 1 FLAGS
            S: a1 BAD *
            C: a2 UID FETCH 1:* FLAGS
            S: a2 OK UID FETCH completed
        """)


async def test_fetch_8bit_text(world: ImapWorld) -> None:
    """RFC 9051 §6.4.5: the octets of an 8-bit body are returned as they are stored,
    in a literal."""
    async with world.connect() as client:
        await selected(world, client)
        await client.converse(rf"""
            C: a1 FETCH 3 BODY.PEEK[TEXT]
            S: * 3 FETCH (BODY[TEXT] {{{len(text_of(UTF8))}}}
            {s_literal(text_of(UTF8), ")")}
            S: a1 OK FETCH completed
        """)
