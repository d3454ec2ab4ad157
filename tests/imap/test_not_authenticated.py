"""The not-authenticated state: greeting, CAPABILITY, NOOP, LOGOUT, ID, LOGIN,
AUTHENTICATE, and the errors of that state (RFC 9051 §3.1, §6.1, §6.2)."""

from __future__ import annotations

import base64

from .imap_harness import ALICE, BOB, BOB_PASSWORD, PASSWORD, ImapWorld

PRE_LOGIN_CAPS = (
    "IMAP4rev1 IMAP4rev2 LITERAL+ ENABLE ID IDLE SASL-IR AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256"
)
POST_LOGIN_CAPS = (
    "IMAP4rev1 IMAP4rev2 LITERAL+ ENABLE ID IDLE SASL-IR NAMESPACE UNSELECT CHILDREN "
    "LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE UIDPLUS MOVE ESEARCH SEARCHRES "
    "SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES "  # RFC 5267, RFC 5256
    "BINARY MULTIAPPEND APPENDLIMIT=100000 STATUS=SIZE CONDSTORE QRESYNC"
    " COMPRESS=DEFLATE"  # RFC 4978
    " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE"  # RFC 9208 §3.1, §5
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def plain(user: str, password: str, authzid: str = "") -> str:
    """An RFC 4616 PLAIN message, base64 encoded."""
    return b64(b"%s\0%s\0%s" % (authzid.encode(), user.encode(), password.encode()))


async def test_greeting_carries_the_capabilities(world: ImapWorld) -> None:
    """RFC 9051 §7.1.1 / §7.1: an OK greeting may carry a CAPABILITY response code,
    sparing the client a CAPABILITY command."""
    async with world.connect() as client:
        assert client.greeting == f"* OK [CAPABILITY {PRE_LOGIN_CAPS}] imap.example.test IMAP ready"


async def test_capability_before_login(world: ImapWorld) -> None:
    """RFC 9051 §6.1.1: IMAP4rev2 (and IMAP4rev1, RFC 9051 Appendix E), the AUTH=
    mechanisms, and nothing that needs a login (no NAMESPACE, MOVE, ...)."""
    async with world.connect() as client:
        await client.converse(rf"""
            C: abcd CAPABILITY
            S: * CAPABILITY {PRE_LOGIN_CAPS}
            S: abcd OK CAPABILITY completed
        """)


async def test_logindisabled_without_tls_when_plaintext_is_not_allowed(world: ImapWorld) -> None:
    """RFC 9051 §6.2.3 and §7.1 PRIVACYREQUIRED: without TLS, LOGINDISABLED is
    advertised instead of AUTH= mechanisms, and LOGIN and AUTHENTICATE are refused
    even with the right password."""
    async with world.connect(plaintext_auth=False) as client:
        assert "LOGINDISABLED" in client.greeting
        assert "AUTH=" not in client.greeting
        await client.converse(rf"""
            C: a1 CAPABILITY
            S: * CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ ENABLE ID IDLE SASL-IR LOGINDISABLED
            S: a1 OK CAPABILITY completed
            C: a2 LOGIN {ALICE} {PASSWORD}
            S: a2 NO [PRIVACYREQUIRED] *
            C: a3 AUTHENTICATE PLAIN {plain(ALICE, PASSWORD)}
            S: a3 NO [PRIVACYREQUIRED] *
            C: a4 STARTTLS
            S: a4 BAD *
            C: a5 NOOP
            S: a5 OK NOOP completed
        """)


async def test_noop(world: ImapWorld) -> None:
    """RFC 9051 §6.1.2: NOOP always succeeds."""
    async with world.connect() as client:
        await client.converse("""
            C: a002 NOOP
            S: a002 OK NOOP completed
        """)


async def test_logout(world: ImapWorld) -> None:
    """RFC 9051 §6.1.3: the untagged BYE comes before the tagged OK, then the
    server closes the connection."""
    async with world.connect() as client:
        await client.converse("""
            C: A023 LOGOUT
            S: * BYE *
            S: A023 OK LOGOUT completed
        """)
        assert await client.at_eof()


async def test_id(world: ImapWorld) -> None:
    """RFC 2971 §3.1-§3.3: ID with the client's fields or NIL; the server answers
    with its own field list (any state)."""
    async with world.connect() as client:
        await client.converse("""
            C: a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")
            S: * ID ("name" "postoffice" "vendor" "postoffice")
            S: a023 OK ID completed
            C: a024 ID NIL
            S: * ID ("name" "postoffice" "vendor" "postoffice")
            S: a024 OK ID completed
        """)


async def test_login_succeeds_and_announces_new_capabilities(world: ImapWorld) -> None:
    """RFC 9051 §6.2.3: LOGIN; a server MAY send the capabilities that changed with the
    OK (§7.1 CAPABILITY response code). The short name gets the primary domain."""
    async with world.connect() as client:
        await client.converse(rf"""
            C: a001 LOGIN alice {PASSWORD}
            S: a001 OK [CAPABILITY {POST_LOGIN_CAPS}] Logged in
            C: a002 CAPABILITY
            S: * CAPABILITY {POST_LOGIN_CAPS}
            S: a002 OK CAPABILITY completed
        """)


async def test_login_with_quoted_strings_and_a_literal(world: ImapWorld) -> None:
    """RFC 9051 §6.2.3 / §4.3: user name and password are astrings: quoted strings
    and synchronising literals both work."""
    async with world.connect() as client:
        await client.converse(rf"""
            C: a1 LOGIN "{BOB}" {{{len(BOB_PASSWORD)}}}
            S: + Ready for literal data
            C: {BOB_PASSWORD}
            S: a1 OK [CAPABILITY *] Logged in
        """)


async def test_bad_password_and_unknown_user_get_the_same_answer(world: ImapWorld) -> None:
    """RFC 9051 §6.2.3 and RFC 5530 §3 AUTHENTICATIONFAILED: a wrong password and
    an unknown user are refused alike, so user names cannot be probed."""
    async with world.connect() as client:
        lines = await client.converse(rf"""
            C: a1 LOGIN {ALICE} wrong
            S: a1 NO [AUTHENTICATIONFAILED] *
            C: a2 LOGIN nobody@example.test {PASSWORD}
            S: a2 NO [AUTHENTICATIONFAILED] *
            C: a3 LOGIN "" ""
            S: a3 NO [AUTHENTICATIONFAILED] *
        """)
        assert lines[0][2:] == lines[1][2:] == lines[2][2:]
        # still not authenticated: a command of the authenticated state is refused
        await client.converse("""
            C: a4 LIST "" *
            S: a4 BAD *
        """)


async def test_authenticate_plain_with_initial_response(world: ImapWorld) -> None:
    """RFC 4959 §3 (SASL-IR) and RFC 4616 PLAIN: the credentials ride on the command."""
    async with world.connect() as client:
        await client.converse(rf"""
            C: a1 AUTHENTICATE PLAIN {plain(ALICE, PASSWORD)}
            S: a1 OK [CAPABILITY {POST_LOGIN_CAPS}] Logged in
        """)


async def test_authenticate_plain_with_a_continuation(world: ImapWorld) -> None:
    """RFC 9051 §6.2.2: without an initial response the server sends an empty
    challenge ``+`` and the client answers with one base64 line."""
    async with world.connect() as client:
        await client.converse(rf"""
            C: A001 AUTHENTICATE PLAIN
            S: +
            C: {plain(ALICE, PASSWORD)}
            S: A001 OK [CAPABILITY *] Logged in
        """)


async def test_authenticate_plain_with_wrong_password(world: ImapWorld) -> None:
    """RFC 9051 §6.2.2: a rejected credential is a NO (AUTHENTICATIONFAILED, RFC 5530)."""
    async with world.connect() as client:
        await client.converse(rf"""
            C: a1 AUTHENTICATE PLAIN {plain(ALICE, "nope")}
            S: a1 NO [AUTHENTICATIONFAILED] *
            C: a2 AUTHENTICATE PLAIN {plain(ALICE, PASSWORD, BOB)}
            S: a2 NO [AUTHENTICATIONFAILED] *
        """)


async def test_authenticate_login(world: ImapWorld) -> None:
    """The LOGIN SASL mechanism (draft-murchison-sasl-login): challenges
    "Username:" and "Password:", base64 encoded."""
    async with world.connect() as client:
        await client.converse(rf"""
            C: a1 AUTHENTICATE LOGIN
            S: + {b64(b"Username:")}
            C: {b64(ALICE.encode())}
            S: + {b64(b"Password:")}
            C: {b64(PASSWORD.encode())}
            S: a1 OK [CAPABILITY *] Logged in
        """)


async def test_authenticate_cancelled_with_a_star(world: ImapWorld) -> None:
    """RFC 9051 §6.2.2: a "*" line cancels; the server MUST answer a tagged BAD. The
    session is still not authenticated and can try again."""
    async with world.connect() as client:
        await client.converse(rf"""
            C: a1 AUTHENTICATE PLAIN
            S: +
            C: *
            S: a1 BAD *
            C: a2 AUTHENTICATE LOGIN
            S: + *
            C: *
            S: a2 BAD *
            C: a3 LOGIN {ALICE} {PASSWORD}
            S: a3 OK [CAPABILITY *] Logged in
        """)


async def test_authenticate_with_invalid_base64_is_bad(world: ImapWorld) -> None:
    """RFC 9051 §6.2.2: an invalid base64 answer MUST be rejected with a tagged BAD."""
    async with world.connect() as client:
        await client.converse("""
            C: a1 AUTHENTICATE PLAIN
            S: +
            C: %%%not-base64%%%
            S: a1 BAD *
        """)


async def test_authenticate_unknown_mechanism(world: ImapWorld) -> None:
    """RFC 9051 §6.2.2: an unsupported mechanism is a NO (RFC 5530 CANNOT fits)."""
    async with world.connect() as client:
        await client.converse("""
            C: a1 AUTHENTICATE CRAM-MD5
            S: a1 NO [CANNOT] *
        """)


async def test_commands_of_later_states_are_bad_before_login(world: ImapWorld) -> None:
    """RFC 9051 §3.1 and §6: a command not valid in the current state is a BAD; it
    is not carried out."""
    async with world.connect() as client:
        await client.converse("""
            C: a1 FETCH 1 FLAGS
            S: a1 BAD command not valid before login
            C: a2 SELECT INBOX
            S: a2 BAD command not valid before login
        """)


async def test_enable_is_not_valid_before_login(world: ImapWorld) -> None:
    """RFC 5161 §3.1 / RFC 9051 §6.3.1: ENABLE belongs to the authenticated state."""
    async with world.connect() as client:
        await client.converse("""
            C: a1 ENABLE IMAP4rev2
            S: a1 BAD *
        """)


async def test_three_bad_commands_end_the_session(world: ImapWorld) -> None:
    """DESIGN.md §5 (every input has a bound) with RFC 9051 §7.1.5: after the third
    bad command before login the server says BYE and closes."""
    async with world.connect() as client:
        await client.converse("""
            C: a1 BLURDYBLOOP
            S: a1 BAD *
            C: a2 FETCH 1 FLAGS
            S: a2 BAD *
            C: a3 NOOP extra
            S: a3 BAD *
            S: * BYE *
        """)
        assert await client.at_eof()


async def test_a_line_without_a_tag_is_an_untagged_bad(world: ImapWorld) -> None:
    """RFC 9051 §7.1.3: a BAD that cannot be tied to a command is untagged."""
    async with world.connect() as client:
        await client.converse("""
            C: (
            S: * BAD *
        """)
        await client.converse("""
            C: a1 NOOP
            S: a1 OK NOOP completed
        """)


async def test_login_is_bad_once_authenticated(world: ImapWorld) -> None:
    """RFC 9051 §6.2: LOGIN, AUTHENTICATE and STARTTLS are valid only in the
    not-authenticated state."""
    async with world.connect() as client:
        await client.login()
        await client.converse(rf"""
            C: a2 LOGIN {ALICE} {PASSWORD}
            S: a2 BAD already authenticated
            C: a3 AUTHENTICATE PLAIN {plain(ALICE, PASSWORD)}
            S: a3 BAD already authenticated
            C: a4 STARTTLS
            S: a4 BAD *
        """)


async def test_rfc9051_capability_example(world: ImapWorld) -> None:
    """RFC 9051 §6.1.1 example (our list; no STARTTLS without a certificate)."""
    async with world.connect() as client:
        await client.converse(rf"""
            C: abcd CAPABILITY
            S: * CAPABILITY {PRE_LOGIN_CAPS}
            S: abcd OK CAPABILITY completed
            C: efgh LOGIN {ALICE} {PASSWORD}
            S: efgh OK [CAPABILITY *] Logged in
            C: ijkl CAPABILITY
            S: * CAPABILITY {POST_LOGIN_CAPS}
            S: ijkl OK CAPABILITY completed
        """)


async def test_bounds_before_login(world: ImapWorld) -> None:
    """DESIGN.md §5 (every input has a bound) with RFC 9051 §7.1.3 BAD and §7.5 (no
    "+" for a literal the server will not take): an 8 KiB line or literal is refused
    before login, and the session goes on."""
    long_line = "x" * 9000
    async with world.connect() as client:
        await client.converse(f"""
            C: a1 NOOP {long_line}
            S: a1 BAD line too long
            C: a2 LOGIN {{9000}}
            S: a2 BAD literal too big
            C: a3 NOOP
            S: a3 OK NOOP completed
        """)
