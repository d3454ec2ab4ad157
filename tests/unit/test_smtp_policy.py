"""The smtp role's decisions: relay permission, access rules, unknown users, EXPN."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from postoffice.config.loader import load_config
from postoffice.core.address import parse_address
from postoffice.directory.accounts import AccountDatabase
from postoffice.directory.directory import Directory
from postoffice.server.smtp_policy import ClientFacts, SmtpPolicy, is_loopback


@pytest.fixture
def policy(tmp_path: Path) -> SmtpPolicy:
    config_file = tmp_path / "postoffice.toml"
    config_file.write_text(
        'hostname = "mail.example.test"\nprimary_domain = "example.test"\n', encoding="utf-8"
    )
    loaded = load_config(config_file)
    accounts = AccountDatabase(
        loaded.paths.directory_db,
        hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
    )
    accounts.add_domain("example.test")
    accounts.add_user(parse_address("alice@example.test"), "pw")
    accounts.close()
    loaded.paths.tables_dir.mkdir(parents=True)
    return SmtpPolicy(Directory(loaded.config, loaded.paths), loaded.config)


def access(policy: SmtpPolicy, text: str) -> None:
    (policy.directory.paths.tables_dir / "access").write_text(text, encoding="utf-8")


def outsider() -> ClientFacts:
    return ClientFacts(ip="127.0.0.2")


def code(policy: SmtpPolicy, client: ClientFacts, rcpt: str, sender: str | None = None) -> str:
    verdict = policy.on_rcpt(client, parse_address(sender) if sender else None, parse_address(rcpt))
    return f"{verdict.reply.code} {verdict.reply.enhanced}"


def test_trusted_networks_default_to_this_host(policy: SmtpPolicy) -> None:
    assert policy.is_trusted("127.0.0.1")
    assert policy.is_trusted("::1")
    assert not policy.is_trusted("127.0.0.2")
    assert not policy.is_trusted("not an ip")
    assert is_loopback("127.0.0.9") and is_loopback("::1") and not is_loopback("192.0.2.1")


def test_local_mail_from_anyone_and_unknown_users_refused(policy: SmtpPolicy) -> None:
    assert code(policy, outsider(), "alice@example.test") == "250 2.1.5"
    assert code(policy, outsider(), "ALICE@Example.Test.") == "250 2.1.5"
    assert code(policy, outsider(), "nobody@example.test") == "550 5.1.1"


@pytest.mark.parametrize(
    "rcpt",
    ["u@remote.test", "alice@[127.0.0.1]", '"u@remote.test"@[127.0.0.1]', "u@sub.example.test"],
)
def test_relaying_denied_to_outsiders(policy: SmtpPolicy, rcpt: str) -> None:
    assert code(policy, outsider(), rcpt) == "554 5.7.1"
    assert code(policy, outsider(), rcpt, sender="alice@example.test") == "554 5.7.1"


@pytest.mark.parametrize("rcpt", ['"u%remote.test"@example.test', '"remote.test!u"@example.test'])
def test_routing_characters_in_local_parts_are_just_unknown_users(
    policy: SmtpPolicy, rcpt: str
) -> None:
    assert code(policy, outsider(), rcpt) == "550 5.1.1"


def test_relay_for_trusted_authenticated_and_access_relay(policy: SmtpPolicy) -> None:
    assert code(policy, ClientFacts(ip="127.0.0.1", trusted=True), "u@remote.test") == "250 2.1.5"
    authed = ClientFacts(ip="127.0.0.2", authenticated_as="alice@example.test")
    assert code(policy, authed, "u@remote.test") == "250 2.1.5"
    access(policy, "To:partner.test RELAY\nConnect:127.0.0.3 RELAY\n")
    assert code(policy, outsider(), "u@partner.test") == "250 2.1.5"
    assert code(policy, outsider(), "u@other.test") == "554 5.7.1"
    assert code(policy, ClientFacts(ip="127.0.0.3"), "u@other.test") == "250 2.1.5"


def test_relay_denied_can_be_temporary(policy: SmtpPolicy) -> None:
    policy.config = policy.config.model_copy(
        update={"smtp": policy.config.smtp.model_copy(update={"relay_denied_temporary": True})}
    )
    assert code(policy, outsider(), "u@remote.test") == "454 4.7.1"


def test_access_rules_at_connect_mail_and_rcpt(policy: SmtpPolicy) -> None:
    access(
        policy,
        "Connect:127.0.0.66 REJECT\n"
        "Connect:127.0.0.77 DISCARD\n"
        "From:spammer.test ERROR:5.7.0:550 Go away\n"
        "From:quiet.test DISCARD\n"
        "To:alice@example.test REJECT\n",
    )
    rejected = policy.on_connect(ClientFacts(ip="127.0.0.66"))
    assert rejected is not None and rejected.code == 550
    discarding = ClientFacts(ip="127.0.0.77")
    assert policy.on_connect(discarding) is None and discarding.discard_all
    spam = policy.on_mail(outsider(), parse_address("x@spammer.test"))
    assert (spam.code, spam.enhanced, spam.text) == (550, "5.7.0", "Go away")
    quiet = outsider()
    assert policy.on_mail(quiet, parse_address("x@quiet.test")).code == 250
    assert quiet.discard_all
    assert code(policy, outsider(), "alice@example.test") == "550 5.7.1"


def test_discard_accepts_and_marks(policy: SmtpPolicy) -> None:
    access(policy, "To:alice@example.test DISCARD\n")
    verdict = policy.on_rcpt(outsider(), None, parse_address("alice@example.test"))
    assert verdict.reply.code == 250 and verdict.discard


def test_expand_lists_mailboxes(policy: SmtpPolicy) -> None:
    (policy.directory.paths.tables_dir / "aliases").write_text(
        "staff: alice, carol@remote.test\n", encoding="utf-8"
    )
    reply = policy.on_expand(ClientFacts(ip="127.0.0.1", trusted=True), "staff")
    assert reply.code == 250
    assert reply.text.split("\n") == ["<alice@example.test>", "<carol@remote.test>"]
    assert policy.on_expand(outsider(), "nobody").code == 550
    assert policy.on_expand(outsider(), "bad address@@").code == 501


def test_login_address(policy: SmtpPolicy) -> None:
    assert policy.login_address("alice") == parse_address("alice@example.test")
    assert policy.login_address("Alice@Example.test") == parse_address("Alice@example.test")
    assert policy.login_address("not valid@@") is None
