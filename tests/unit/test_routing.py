"""The routing decision: one table of cases over access, virtusertable, aliases and accounts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from postoffice.core.address import Address, parse_address
from postoffice.directory.routing import (
    FileDelivery,
    LocalDelivery,
    ProgramDelivery,
    RemoteDelivery,
    RoutingPolicy,
    RoutingResult,
    route,
)
from postoffice.directory.tables.access import parse_access
from postoffice.directory.tables.aliases import parse_aliases
from postoffice.directory.tables.mailertable import parse_mailertable
from postoffice.directory.tables.tableset import TableSnapshot
from postoffice.directory.tables.virtusertable import parse_virtusertable

ALIASES = "/etc/mail/aliases"

ALIASES_TEXT = (
    "postmaster: root\n"  # 1
    "root: alice\n"  # 2
    "staff: alice, bob, carol@remote.test\n"  # 3
    "carol: carol, carol@remote.test\n"  # 4
    "loopa: loopb\n"  # 5
    "loopb: loopa\n"  # 6
    "mixed: alice, nosuch\n"  # 7
    'prog: "|/usr/bin/vacation alice"\n'  # 8
    "file: /var/log/mail-copy\n"  # 9
    "inc: :include:members\n"  # 10
    "big: :include:big\n"  # 11
    "bob+*: carol\n"  # 12
    "rename: alice\n"  # 13
    "selfaddr: selfaddr@example.test, x@remote.test\n"  # 14
    "direct: \\alice, bob\n"  # 15
    "tovirt: info@virt.test\n"  # 16
    "diamond: root, postmaster, alice\n"  # 17
    "selfloop: selfloop\n"  # 18
    + "".join(f"deep{i}: deep{i + 1}\n" for i in range(30))  # 19..48
    + "deep30: alice\n"
)

INCLUDES = {
    "/etc/mail/members": "# list members\nbob\n|/bin/evil\n/tmp/evil-file\n",
    "/etc/mail/big": "".join(f"user{i}@remote.test\n" for i in range(1001)),
}

VIRTUSERTABLE_TEXT = (
    "info@virt.test       staff\n"  # 1
    "sales@virt.test      bob@example.test\n"  # 2
    "joe@virt.test        error:nouser 550 No such user here\n"  # 3
    "jax@virt.test        error:5.7.0:550 Address invalid\n"  # 4
    "news+*@virt.test     alice+%2\n"  # 5
    "@virt.test           %1@example.test\n"  # 6
    "@virt2.test          %1\n"  # 7
    "me@other.example     me@other.example\n"  # 8
)

MAILERTABLE_TEXT = (
    "partner.test         esmtp:mx.partner.test\n"  # 1
    ".partner.test        relay:[10.1.1.1]:2525\n"  # 2
    "blocked.test         error:5.7.0:550 No mail for there\n"  # 3
    "legacy.test          local:alice\n"  # 4
)

ACCESS_TEXT = (
    "Connect:192.0.2.66            REJECT\n"  # 1
    "Connect:192.0.2               RELAY\n"  # 2
    "From:spammer.test             REJECT\n"  # 3
    "From:<>                       OK\n"  # 4
    "To:discard.test               DISCARD\n"  # 5
    "To:partner.test               RELAY\n"  # 6
    "To:blocked@example.test       ERROR:5.7.1:550 Mailbox disabled\n"  # 7
    "To:okonly.test                OK\n"  # 8
    "From:quiet.test               DISCARD\n"  # 9
    "Connect:tempfail.test         ERROR:4.7.1:451 Try later\n"  # 10
)


def read_include(path: Path) -> str:
    try:
        return INCLUDES[str(path)]
    except KeyError:
        raise FileNotFoundError(2, "No such file", str(path)) from None


def build_tables() -> TableSnapshot:
    return TableSnapshot(
        access=parse_access(ACCESS_TEXT, source="/etc/mail/access"),
        aliases=parse_aliases(ALIASES_TEXT, source=ALIASES, read_include=read_include),
        virtusertable=parse_virtusertable(VIRTUSERTABLE_TEXT, source="/etc/mail/virtusertable"),
        mailertable=parse_mailertable(MAILERTABLE_TEXT, source="/etc/mail/mailertable"),
    )


TABLES = build_tables()


@dataclass
class DirectoryStub:
    domains: set[str] = field(
        default_factory=lambda: {"example.test", "other.example", "virt.test", "virt2.test"}
    )
    accounts: set[str] = field(
        default_factory=lambda: {
            "alice@example.test",
            "bob@example.test",
            "carol@example.test",
            "selfaddr@example.test",
            "me@other.example",
            "zed@other.example",
            "blocked@example.test",
        }
    )

    def is_local_domain(self, domain: str) -> bool:
        return domain in self.domains

    def has_account(self, address: Address) -> bool:
        return address.key in self.accounts


POLICY = RoutingPolicy(primary_domain="example.test")


def render(result: RoutingResult) -> list[str]:
    shown = []
    for delivery in result.deliveries:
        if isinstance(delivery, LocalDelivery):
            detail = f"[{delivery.detail}]" if delivery.detail is not None else ""
            shown.append(f"local:{delivery.account}{detail}")
        elif isinstance(delivery, RemoteDelivery):
            via = f" via {delivery.route}" if delivery.route else ""
            shown.append(f"remote:{delivery.address}{via}")
        elif isinstance(delivery, ProgramDelivery):
            shown.append(f"program:{delivery.command}")
        elif isinstance(delivery, FileDelivery):
            shown.append(f"file:{delivery.path}")
    return shown


def run(recipient: str, **kwargs: Any) -> RoutingResult:
    policy = kwargs.pop("policy", POLICY)
    sender = kwargs.pop("sender", None)
    if sender is not None and sender != "<>":
        sender = parse_address(sender)
    return route(
        parse_address(recipient),
        tables=kwargs.pop("tables", TABLES),
        view=DirectoryStub(),
        policy=policy,
        sender=sender,
        **kwargs,
    )


@dataclass(frozen=True)
class Case:
    recipient: str
    deliveries: list[str]
    failures: list[tuple[str, str]] = field(default_factory=list)  # (target, "550 5.1.1")
    error: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    discard: bool = False
    relay: bool = False


def reply_code(reply: object) -> str:
    return f"{reply.code} {reply.enhanced}"  # type: ignore[attr-defined]


CASES: dict[str, Case] = {
    # accounts and unknown users
    "account": Case("alice@example.test", ["local:alice@example.test"]),
    "account case-insensitive": Case("ALICE@Example.TEST", ["local:ALICE@example.test"]),
    "account in another local domain": Case("zed@other.example", ["local:zed@other.example"]),
    "unknown user": Case(
        "nobody@example.test", [], [("nobody@example.test", "550 5.1.1")], "550 5.1.1"
    ),
    # alias chains
    "alias chain": Case("postmaster@example.test", ["local:alice@example.test"]),
    "aliases apply to every local domain": Case(
        "postmaster@other.example", ["local:alice@example.test"]
    ),
    "alias list with remote member": Case(
        "staff@example.test",
        ["local:alice@example.test", "local:bob@example.test", "remote:carol@remote.test"],
    ),
    "one unknown member of a list": Case(
        "mixed@example.test",
        ["local:alice@example.test"],
        [("nosuch@example.test", "550 5.1.1")],
    ),
    "diamond is deduplicated": Case("diamond@example.test", ["local:alice@example.test"]),
    "self-reference delivers and stops": Case(
        "carol@example.test", ["local:carol@example.test", "remote:carol@remote.test"]
    ),
    "self-reference by full address": Case(
        "selfaddr@example.test", ["local:selfaddr@example.test", "remote:x@remote.test"]
    ),
    "self-reference alone": Case(
        "selfloop@example.test", [], [("selfloop@example.test", "550 5.1.1")], "550 5.1.1"
    ),
    "backslash skips aliasing": Case(
        "direct@example.test", ["local:alice@example.test", "local:bob@example.test"]
    ),
    "loop a -> b -> a": Case(
        "loopa@example.test", [], [("loopa@example.test", "554 5.4.6")], "554 5.4.6"
    ),
    "depth limit": Case(
        "deep0@example.test", [], [("deep21@example.test", "554 5.4.6")], "554 5.4.6"
    ),
    "depth limit raised": Case(
        "deep0@example.test",
        ["local:alice@example.test"],
        kwargs={"policy": replace(POLICY, max_alias_depth=40)},
    ),
    "fan-out limit": Case("big@example.test", [], [], "552 5.5.3"),
    "include: members expand, program and file refused by default": Case(
        "inc@example.test",
        ["local:bob@example.test"],
        [("|/bin/evil", "550 5.7.1"), ("/tmp/evil-file", "550 5.7.1")],
    ),
    # +detail
    "detail kept for the account": Case(
        "alice+lists@example.test", ["local:alice@example.test[lists]"]
    ),
    "detail through a one-target alias": Case(
        "rename+x@example.test", ["local:alice@example.test[x]"]
    ),
    "detail dropped by a list alias": Case(
        "staff+x@example.test",
        ["local:alice@example.test", "local:bob@example.test", "remote:carol@remote.test"],
    ),
    "user+* alias": Case(
        "bob+anything@example.test",
        ["local:carol@example.test[anything]", "remote:carol@remote.test"],
    ),
    "detail on unknown user": Case(
        "nobody+x@example.test", [], [("nobody+x@example.test", "550 5.1.1")], "550 5.1.1"
    ),
    # virtusertable
    "virtual to alias": Case(
        "info@virt.test",
        ["local:alice@example.test", "local:bob@example.test", "remote:carol@remote.test"],
    ),
    "virtual to address": Case("sales@virt.test", ["local:bob@example.test"]),
    "virtual error nouser": Case(
        "joe@virt.test", [], [("joe@virt.test", "550 5.1.1")], "550 5.1.1"
    ),
    "virtual error with dsn": Case(
        "jax@virt.test", [], [("jax@virt.test", "550 5.7.0")], "550 5.7.0"
    ),
    "virtual catch-all %1": Case(
        "carol@virt.test", ["local:carol@example.test", "remote:carol@remote.test"]
    ),
    "virtual catch-all to unknown": Case(
        "ghost@virt.test", [], [("ghost@example.test", "550 5.1.1")], "550 5.1.1"
    ),
    "virtual user+* with %2": Case("news+tech@virt.test", ["local:alice@example.test[tech]"]),
    "virtual catch-all keeps stripped detail": Case(
        "alice+x@virt.test", ["local:alice@example.test[x]"]
    ),
    "virtual maps to itself": Case("me@other.example", ["local:me@other.example"]),
    "virtual to alias to virtual": Case(
        "tovirt@example.test",
        ["local:alice@example.test", "local:bob@example.test", "remote:carol@remote.test"],
    ),
    "network text never becomes a program": Case(
        '"|/bin/sh -c evil"@virt2.test',
        [],
        [('"|/bin/sh -c evil"@virt2.test', "550 5.7.1")],
        "550 5.7.1",
    ),
    "network text never becomes a file": Case(
        "/etc/passwd@virt2.test", [], [("/etc/passwd@virt2.test", "550 5.7.1")], "550 5.7.1"
    ),
    # remote
    "remote without mailertable": Case("x@elsewhere.test", ["remote:x@elsewhere.test"]),
    "remote with mailertable": Case(
        "x@partner.test", ["remote:x@partner.test via esmtp:mx.partner.test"], relay=True
    ),
    "remote subdomain mailertable": Case(
        "x@a.partner.test", ["remote:x@a.partner.test via relay:[10.1.1.1]:2525"], relay=True
    ),
    "mailertable error": Case("x@blocked.test", [], [("x@blocked.test", "550 5.7.0")], "550 5.7.0"),
    "mailertable local": Case("x@legacy.test", ["local:alice@example.test"]),
    # access
    "access Connect REJECT": Case(
        "alice@example.test", [], [], "550 5.7.1", kwargs={"client_ip": "192.0.2.66"}
    ),
    "access Connect RELAY": Case(
        "x@elsewhere.test",
        ["remote:x@elsewhere.test"],
        kwargs={"client_ip": "192.0.2.9"},
        relay=True,
    ),
    "access Connect ERROR by host name": Case(
        "alice@example.test",
        [],
        [],
        "451 4.7.1",
        kwargs={"client_ip": "198.51.100.1", "client_hostname": "mx.tempfail.test"},
    ),
    "access From REJECT": Case(
        "alice@example.test", [], [], "550 5.7.1", kwargs={"sender": "bad@mx.spammer.test"}
    ),
    "access From DISCARD": Case(
        "alice@example.test", [], [], None, kwargs={"sender": "a@quiet.test"}, discard=True
    ),
    "access null sender OK": Case(
        "alice@example.test", ["local:alice@example.test"], kwargs={"sender": "<>"}
    ),
    "access To ERROR": Case("blocked@example.test", [], [], "550 5.7.1"),
    "access To DISCARD": Case("x@discard.test", [], [], None, discard=True),
    "access To OK is not relay": Case("x@okonly.test", ["remote:x@okonly.test"]),
    # programs and files
    "program refused by default": Case(
        "prog@example.test", [], [("|/usr/bin/vacation alice", "550 5.7.1")], "550 5.7.1"
    ),
    "program allowed when enabled": Case(
        "prog@example.test",
        ["program:/usr/bin/vacation alice"],
        kwargs={"policy": replace(POLICY, allow_program_targets=True)},
    ),
    "file refused by default": Case(
        "file@example.test", [], [("/var/log/mail-copy", "550 5.7.1")], "550 5.7.1"
    ),
    "file allowed when enabled": Case(
        "file@example.test",
        ["file:/var/log/mail-copy"],
        kwargs={"policy": replace(POLICY, allow_file_targets=True)},
    ),
    "program and file refused from include": Case(
        "inc@example.test",
        ["local:bob@example.test"],
        [("|/bin/evil", "550 5.7.1"), ("/tmp/evil-file", "550 5.7.1")],
        kwargs={"policy": replace(POLICY, allow_program_targets=True, allow_file_targets=True)},
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_route(case: Case) -> None:
    result = run(case.recipient, **dict(case.kwargs))
    assert render(result) == case.deliveries
    assert [(target, reply_code(reply)) for target, reply in result.failures] == case.failures
    assert (reply_code(result.error) if result.error else None) == case.error
    assert result.discard is case.discard
    assert result.relay_allowed_by_access is case.relay
    assert result.accepted is (case.error is None)


def test_fan_out_limit_counts_final_targets() -> None:
    policy = replace(POLICY, max_fanout=2)
    assert run("staff@example.test", policy=policy).error is not None
    assert run("carol@example.test", policy=policy).error is None


def test_fan_out_limit_is_inclusive() -> None:
    result = run("big@example.test", policy=replace(POLICY, max_fanout=1001))
    assert result.error is None
    assert len(result.deliveries) == 1001


def test_trace_names_every_matched_line() -> None:
    result = run("info@virt.test", client_ip="192.0.2.9")
    locations = [step.location for step in result.trace if step.location]
    assert locations[:3] == [
        "/etc/mail/access:2",
        "/etc/mail/virtusertable:1",
        f"{ALIASES}:3",
    ]


def test_route_is_pure_and_repeatable() -> None:
    first = run("staff@example.test", sender="a@b.test", client_ip="203.0.113.5")
    second = run("staff@example.test", sender="a@b.test", client_ip="203.0.113.5")
    assert first == second


# -- review: defects found and fixed ------------------------------------------------


@pytest.mark.parametrize(
    "recipient",
    [
        '"victim@remote.test"@virt2.test',  # @virt2.test  %1
        '"victim@remote.test"@virt.test',  # @virt.test   %1@example.test
        '"news+victim@remote.test"@virt.test',  # news+*@virt.test  alice+%2
    ],
)
def test_placeholders_never_carry_a_domain_out_of_the_local_part(recipient: str) -> None:
    # A quoted local part may hold "@": %1/%2/%3 fill in a local part only, so a
    # catch-all never turns into a relay to a domain the sender chose.
    result = run(recipient)
    remote = [d for d in result.deliveries if isinstance(d, RemoteDelivery)]
    assert remote == []


def test_placeholder_fills_a_quoted_local_part_for_a_remote_target() -> None:
    # sendmail keeps a quoted local part one token: @f.test  %1@g.test forwards
    # "a b"@g.test, not a re-parse of the text.
    tables = replace(
        TABLES,
        virtusertable=parse_virtusertable("@virt.test  %1@remote.test\n", source="v"),
    )
    result = run('"john doe"@virt.test', tables=tables)
    assert render(result) == ['remote:"john doe"@remote.test']


@pytest.mark.parametrize(
    "access_text",
    ["To:postmaster@   RELAY\n", "postmaster@   RELAY\n"],
)
def test_a_local_part_key_never_grants_relaying(access_text: str) -> None:
    # cf/README: RELAY in To: names a domain (or, with relaytofulladdress, a full
    # address); "user@" keys are for the username check only.
    tables = replace(TABLES, access=parse_access(access_text, source="a"))
    result = run("postmaster@remote.test", tables=tables)
    assert result.accepted
    assert result.relay_allowed_by_access is False


def test_a_to_domain_or_full_address_relay_still_grants_relaying() -> None:
    text = "To:partner.test RELAY\nTo:one@far.test RELAY\n"
    tables = replace(TABLES, access=parse_access(text, source="a"))
    assert run("x@partner.test", tables=tables).relay_allowed_by_access
    assert run("one@far.test", tables=tables).relay_allowed_by_access
    assert not run("two@far.test", tables=tables).relay_allowed_by_access


def test_refused_program_targets_count_towards_the_work_bound() -> None:
    include = "".join(f'"|/bin/p{i}"\n' for i in range(20_000))
    aliases = parse_aliases(
        "wide: :include:wide\n", source=ALIASES, read_include=lambda path: include
    )
    result = run("wide@example.test", tables=replace(TABLES, aliases=aliases))
    assert result.error is not None and reply_code(result.error) == "552 5.5.3"
    assert len(result.failures) <= 4 * POLICY.max_fanout + 100
    assert len(result.trace) <= 2 * (4 * POLICY.max_fanout + 100)


def test_directory_route_reads_one_snapshot_per_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One decision reads one snapshot: the local-domain check inside route()
    # must not re-stat (or re-read) every table file at each expansion step,
    # nor see a reload half-way through.
    from postoffice.config.model import Config, Paths
    from postoffice.directory.directory import Directory
    from postoffice.directory.tables.tableset import TableSet

    tables_dir = tmp_path / "mail"
    tables_dir.mkdir()
    (tables_dir / "aliases").write_text(
        "staff: " + ", ".join(f"m{i}" for i in range(50)) + "\n", encoding="utf-8"
    )
    (tables_dir / "local-host-names").write_text("example.test\n", encoding="utf-8")
    config = Config(hostname="mx.example.test", primary_domain="example.test")
    paths = Paths(
        config_file=tmp_path / "postoffice.toml",
        data_dir=tmp_path,
        tables_dir=tables_dir,
        tls_cert=tmp_path / "cert.pem",
        tls_key=tmp_path / "key.pem",
        maillog=tmp_path / "maillog",
        directory_db=tmp_path / "directory.sqlite3",
        mail_dir=tmp_path / "mail-store",
        spool_mail_dir=tmp_path / "spool",
        queue_dir=tmp_path / "queue",
        dkim_keys_dir=tmp_path / "dkim",
        maildrop_dir=tmp_path / "maildrop",
    )
    directory = Directory(config, paths)
    try:
        refreshes: list[int] = []
        original = TableSet.refresh

        def counting(self: TableSet) -> bool:
            refreshes.append(1)
            return original(self)

        monkeypatch.setattr(TableSet, "refresh", counting)
        result = directory.route(parse_address("staff@example.test"))
        assert len(result.failures) == 50  # no accounts: every member fails
        assert len(refreshes) == 1
    finally:
        directory.close()
