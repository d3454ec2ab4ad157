"""The mailertable: mailer:host routes, dot-domains, %1, ports and errors."""

from __future__ import annotations

import pytest

from postoffice.core.errors import TableError
from postoffice.core.reply import Reply
from postoffice.directory.tables.mailertable import Mailertable, RelayHost, parse_mailertable

SOURCE = "/etc/mail/mailertable"


def table(text: str) -> Mailertable:
    return parse_mailertable(text, source=SOURCE)


def test_routes_are_parsed() -> None:
    mt = table(
        "example.net        esmtp:mx.example.net\n"
        ".example.net       smtp:[gateway.example.net]\n"
        "partner.test       relay:[10.1.1.1]:2525\n"
        "backup.test        esmtp:mx1.test:mx2.test:26\n"
        "v6.test            smtp:[IPv6:2001:db8::1]:25\n"
        "old.test           error:5.1.2:550 Host moved\n"
        "legacy.test        local:archive\n"
        "self.test          local:\n"
    )
    assert mt.routes["example.net"].hosts == (RelayHost("mx.example.net", True),)
    assert mt.routes[".example.net"].hosts == (RelayHost("gateway.example.net", False),)
    assert mt.routes["partner.test"].hosts == (RelayHost("10.1.1.1", False, 2525),)
    assert mt.routes["backup.test"].hosts == (
        RelayHost("mx1.test", True),
        RelayHost("mx2.test", True, 26),
    )
    assert mt.routes["v6.test"].hosts == (RelayHost("2001:db8::1", False, 25),)
    assert mt.routes["old.test"].reply == Reply(550, "5.1.2", "Host moved")
    assert mt.routes["legacy.test"].local_user == "archive"
    assert mt.routes["self.test"].local_user is None
    assert str(mt.routes["partner.test"]) == "relay:[10.1.1.1]:2525"
    assert mt.summary() == "8 routes"


def test_most_specific_match_and_wildcard() -> None:
    mt = table(
        ".my.domain          esmtp:%1.relay.test\n"  # 1
        "uuhost1.my.domain   smtp:[uuhost1]\n"  # 2
        "my.domain           esmtp:host.my.domain\n"  # 3
        ".                   relay:[smarthost.test]\n"  # 4
    )

    def line(domain: str) -> int | None:
        found = mt.lookup(domain)
        return None if found is None else found.origin.line

    assert line("uuhost1.my.domain") == 2
    assert line("my.domain") == 3
    assert line("a.b.my.domain") == 1
    assert line("elsewhere.test") == 4
    wild = mt.lookup("a.b.my.domain")
    assert wild is not None and wild.hosts == (RelayHost("a.b.relay.test", True),)
    assert table("x.test smtp:y.test\n").lookup("other.test") is None
    literal = table("[192.0.2.1] smtp:[10.0.0.1]\n")
    assert literal.lookup("[192.0.2.1]") is not None
    assert literal.lookup("[192.0.2.2]") is None
    assert mt.lookup("[192.0.2.2]") == mt.routes["."]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a.test xnet:host", "unknown mailer 'xnet'"),
        ("a.test smtp", "expected mailer:host"),
        ("a.test smtp:", "needs a host"),
        ("a.test smtp:bad..host", "invalid host"),
        ("a.test smtp:[10.1.1.1]:99999", "invalid port"),
        ("a.test smtp:%1.relay.test", "%1 can only be used"),
        ("a.test error:250 ok", "not an error"),
        ("a.test local:bad user", "invalid local user"),
        ("bad..domain smtp:x.test", "invalid domain"),
        ("a.test", "has no value"),
    ],
)
def test_mailertable_errors_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(TableError, match=message) as caught:
        table(f"ok.test smtp:ok.test\n{line}\n")
    assert f"{SOURCE}:2:" in str(caught.value)


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(TableError, match=rf"{SOURCE}:2: duplicate key"):
        table("a.test smtp:x.test\nA.TEST smtp:y.test\n")
