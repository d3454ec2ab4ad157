"""local-host-names: the domains this host takes mail for."""

from __future__ import annotations

import pytest

from postoffice.core.errors import TableError
from postoffice.directory.tables.localhostnames import parse_local_host_names

SOURCE = "/etc/mail/local-host-names"


def test_domains_are_canonical_and_remember_their_line() -> None:
    names = parse_local_host_names(
        "# this host\nExample.TEST\nmail.example.test.\nbücher.test\nexample.test\n", source=SOURCE
    )
    assert names.domains == {"example.test", "mail.example.test", "xn--bcher-kva.test"}
    assert "example.test" in names
    assert "other.test" not in names
    assert str(names.origins["example.test"]) == f"{SOURCE}:2"
    assert names.summary() == "3 domains"


@pytest.mark.parametrize(
    ("line", "message"), [("two names.test", "one domain"), ("bad..name", "invalid domain")]
)
def test_errors_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(TableError, match=message) as caught:
        parse_local_host_names(f"ok.test\n{line}\n", source=SOURCE)
    assert f"{SOURCE}:2:" in str(caught.value)
