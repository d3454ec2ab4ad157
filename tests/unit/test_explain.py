"""postoffice explain: the routing trace rendered as text."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from postoffice.core.address import Address
from postoffice.core.errors import AddressError
from postoffice.directory.explain import explain
from postoffice.directory.routing import RoutingPolicy
from postoffice.directory.tables.access import parse_access
from postoffice.directory.tables.aliases import parse_aliases
from postoffice.directory.tables.mailertable import parse_mailertable
from postoffice.directory.tables.tableset import TableSnapshot
from postoffice.directory.tables.virtusertable import parse_virtusertable


@dataclass
class ExplainDirectory:
    def is_local_domain(self, domain: str) -> bool:
        return domain in {"example.test", "virt.test"}

    def has_account(self, address: Address) -> bool:
        return address.key in {"alice@example.test", "bob@example.test"}


TABLES = TableSnapshot(
    access=parse_access(
        "# access\nConnect:192.0.2 RELAY\nFrom:spam.test REJECT\n", source="/etc/mail/access"
    ),
    aliases=parse_aliases(
        "postmaster: root\nroot: alice\nstaff: alice, bob,\n  carol@partner.test, ghost\n"
        'prog: "|/usr/bin/vacation"\n',
        source="/etc/mail/aliases",
    ),
    virtusertable=parse_virtusertable(
        "info@virt.test staff\n@virt.test %1@example.test\n", source="/etc/mail/virtusertable"
    ),
    mailertable=parse_mailertable(
        "# routes\npartner.test smtp:[10.1.1.1]:2525\n", source="/etc/mail/mailertable"
    ),
)
POLICY = RoutingPolicy(primary_domain="example.test")


def run(recipient: str, **kwargs: str) -> str:
    return explain(recipient, tables=TABLES, view=ExplainDirectory(), policy=POLICY, **kwargs)


def test_explain_names_each_matched_entry_and_the_result() -> None:
    text = run("<info+x@virt.test>", sender="someone@else.test", client_ip="192.0.2.7")
    for where in (
        "/etc/mail/access:2",
        "/etc/mail/virtusertable:1",
        "/etc/mail/aliases:3",
        "/etc/mail/mailertable:2",
    ):
        assert where in text
    assert "recipient: info+x@virt.test" in text
    assert "sender:    <someone@else.test>" in text
    assert "client:    unknown [192.0.2.7]" in text
    assert "deliver to mailbox alice@example.test" in text
    assert "send to carol@partner.test via smtp:[10.1.1.1]:2525" in text
    assert "failed: ghost@example.test: 550 5.1.1 No such user here" in text
    assert "relaying allowed by access: yes" in text


def test_explain_orders_steps_and_indents_by_depth() -> None:
    text = run("postmaster")
    steps = [line for line in text.splitlines() if line.strip()[:2].strip(".").isdigit()]
    assert "/etc/mail/aliases:1" in steps[1]
    assert "/etc/mail/aliases:2" in steps[3]
    assert steps[3].index("aliases") > steps[1].index("aliases")  # deeper, further right


def test_explain_refusal_and_null_sender() -> None:
    text = run("alice@example.test", sender="x@spam.test")
    assert "/etc/mail/access:3" in text
    assert "refused: 550 5.7.1 Access denied" in text
    assert "sender:    <>" in run("alice@example.test", sender="<>")


def test_explain_program_refused_says_why() -> None:
    text = run("prog@example.test")
    assert "/etc/mail/aliases:5" in text
    assert "disabled by the routing policy" in text
    assert "refused: 550 5.7.1" in text


def test_explain_unparsable_recipient_raises() -> None:
    with pytest.raises(AddressError):
        run("not an address")
