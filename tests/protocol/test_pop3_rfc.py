"""The examples of RFC 1939 (and RFC 1225's LAST), replayed against the server.

The §10 session is compared line for line with the RFC's ``S:`` lines; the
only lines the RFC leaves open are the messages themselves ("<the POP3
server sends message 1>"), which are replaced by the octets of two messages
of exactly 120 and 200 octets.
"""

from __future__ import annotations

import pytest

from postoffice.protocol.pop3 import Authenticate, Pop3State, Update, wire_size
from tests.protocol.test_pop3_harness import (
    RFC_TIMESTAMP,
    FakeDriver,
    Pop3Harness,
    message,
    settings,
    transcript,
)

MODES = ["whole", "bytewise"]

# RFC 1939 §10, as published (indentation kept).
RFC1939_EXAMPLE = """
      S: <wait for connection on TCP port 110>
         ...
      C: <open connection>
      S:    +OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>
      C:    APOP mrose c4c9334bac560ecc979e58001b3e22fb
      S:    +OK mrose's maildrop has 2 messages (320 octets)
      C:    STAT
      S:    +OK 2 320
      C:    LIST
      S:    +OK 2 messages (320 octets)
      S:    1 120
      S:    2 200
      S:    .
      C:    RETR 1
      S:    +OK 120 octets
      S:    <the POP3 server sends message 1>
      S:    .
      C:    DELE 1
      S:    +OK message 1 deleted
      C:    RETR 2
      S:    +OK 200 octets
      S:    <the POP3 server sends message 2>
      S:    .
      C:    DELE 2
      S:    +OK message 2 deleted
      C:    QUIT
      S:    +OK dewey POP3 server signing off (maildrop empty)
      C:  <close connection>
      S:  <wait for next connection>
"""


def sized_message(size: int, subject: str) -> bytes:
    """A message whose wire size is exactly ``size`` octets."""
    head = f"From: mrose@dbc.mtview.ca.us\r\nSubject: {subject}\r\n\r\n".encode()
    filler = size - len(head) - 2
    assert filler > 0
    data = head + b"x" * filler + b"\r\n"
    assert wire_size(data) == size
    return data


def rfc_exchanges(messages: list[bytes]) -> list[tuple[list[bytes], list[bytes]]]:
    """(client lines, expected server lines) per exchange, the greeting first."""
    exchanges: list[tuple[list[bytes], list[bytes]]] = []
    for raw in RFC1939_EXAMPLE.strip().splitlines():
        line = raw.strip()
        if line == "..." or "connection" in line:  # the RFC's stage directions
            continue
        who, _, said = line.partition(":")
        said = said.strip()
        if who == "C":
            exchanges.append(([said.encode()], []))
        elif said.startswith("<the POP3 server sends message "):
            number = int(said.removeprefix("<the POP3 server sends message ").rstrip(">"))
            exchanges[-1][1].extend(messages[number - 1].split(b"\r\n")[:-1])
        elif not exchanges:
            exchanges.append(([], [said.encode()]))
        else:
            exchanges[-1][1].append(said.encode())
    return exchanges


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("chunk_size", "whole"), [(None, False), (1, False), (7, False), (None, True)]
)
def test_rfc1939_section_10_example_session(mode: str, chunk_size: int | None, whole: bool) -> None:
    messages = [sized_message(120, "first"), sized_message(200, "second")]
    driver = FakeDriver(
        passwords={"mrose": "tanstaaf"},
        maildrops={"mrose": messages},
        chunk_size=chunk_size,
        whole=whole,
    )
    server = settings(hostname="dewey", apop_timestamp=RFC_TIMESTAMP, plaintext_auth=False)
    harness = Pop3Harness(server, driver=driver, mode=mode)
    exchanges = rfc_exchanges(messages)
    assert exchanges[0] == ([], [f"+OK POP3 server ready {RFC_TIMESTAMP}".encode()])
    assert harness.greeting == exchanges[0][1][0] + b"\r\n"
    for client, expected in exchanges[1:]:
        output = harness.feed(b"".join(line + b"\r\n" for line in client))
        assert output.split(b"\r\n")[:-1] == expected, f"after {client}"
    [login] = harness.of_type(Authenticate)
    assert isinstance(login, Authenticate)
    assert (login.mechanism, login.user, login.password) == ("APOP", "mrose", None)
    assert login.apop_digest == "c4c9334bac560ecc979e58001b3e22fb"
    assert login.apop_timestamp == RFC_TIMESTAMP
    assert driver.updates == [Update(deleted=(0, 1), retrieved=(0, 1))]
    assert harness.closed is not None and harness.conn.closed
    assert harness.conn.state is Pop3State.UPDATE


def test_rfc1939_apop_with_a_wrong_secret_is_refused() -> None:
    driver = FakeDriver(passwords={"mrose": "not tanstaaf"})
    server = settings(hostname="dewey", apop_timestamp=RFC_TIMESTAMP)
    harness = Pop3Harness(server, driver=driver)
    harness.converse(
        """
        C: APOP mrose c4c9334bac560ecc979e58001b3e22fb
        S: -ERR [AUTH] invalid user name or password
        """
    )
    assert harness.conn.state is Pop3State.AUTHORIZATION


@pytest.mark.parametrize("mode", MODES)
def test_rfc1939_section_5_and_7_examples(mode: str) -> None:
    """LIST, UIDL, DELE and TOP as their sections show them (texts left to the
    server are ours)."""
    driver = FakeDriver(maildrops={"alice": [message("one"), message("two")]})
    size = wire_size(message("one"))
    transcript(
        f"""
        C: USER alice
        S: +OK send PASS
        C: PASS secret
        S: +OK alice's maildrop has 2 messages ({2 * size} octets)
        C: LIST 2
        S: +OK 2 {size}
        C: LIST 3
        S: -ERR no such message, only 2 messages in maildrop
        C: UIDL
        S: +OK unique-id listing follows
        S: 1 uid-0
        S: 2 uid-1
        S: .
        C: UIDL 2
        S: +OK 2 uid-1
        C: UIDL 3
        S: -ERR no such message, only 2 messages in maildrop
        C: DELE 1
        S: +OK message 1 deleted
        C: DELE 1
        S: -ERR message 1 already deleted
        C: TOP 1 10
        S: -ERR message 1 already deleted
        C: TOP 100 3
        S: -ERR no such message
        C: RSET
        S: +OK maildrop has 2 messages ({2 * size} octets)
        C: QUIT
        S: +OK pop.example.test POP3 server signing off (2 messages left)
        """,
        mode=mode,
        driver=driver,
    )
    assert driver.updates == [Update(deleted=(), retrieved=())]


def test_rfc1225_last_example_with_rset_back_to_the_session_start() -> None:
    """RFC 1225 LAST (kept by RFC 1460 §5): RETR and DELE raise the highest
    number accessed; RSET puts back its value at the start of the session,
    which is 0 here (the RFC's example starts at 1 from a previous session)."""
    driver = FakeDriver(maildrops={"alice": [message(str(n)) for n in range(4)]})
    size = wire_size(message("0"))
    harness = Pop3Harness(driver=driver)
    harness.login()
    harness.converse(
        f"""
        C: STAT
        S: +OK 4 {4 * size}
        C: LAST
        S: +OK 0
        C: DELE 2
        S: +OK message 2 deleted
        C: LAST
        S: +OK 2
        C: RSET
        S: +OK maildrop has 4 messages ({4 * size} octets)
        C: LAST
        S: +OK 0
        """
    )
    harness.feed(b"RETR 3\r\n")
    harness.converse(
        """
        C: LAST
        S: +OK 3
        C: DELE 2
        S: +OK message 2 deleted
        C: LAST
        S: +OK 3
        """
    )
