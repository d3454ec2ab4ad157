"""The quota check at SMTP RCPT (``SmtpPolicy.on_rcpt_quota``, ``delivery.quota``) on a
recipient that fans out: an alias is not refused because one of its members is full.

The members with room get the message; the full member's copy is deferred (or
bounced) by local delivery, which checks the quota of each copy itself, as
Postfix with Dovecot's quota service does. Refusing the whole alias at RCPT
would hold the message back from every member until the full one cleans up.
"""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher

from postoffice.config.loader import load_config
from postoffice.core.address import parse_address
from postoffice.delivery.quota import QuotaGuard
from postoffice.directory.accounts import AccountDatabase
from postoffice.directory.directory import Directory
from postoffice.server.smtp_policy import ClientFacts, SmtpPolicy
from postoffice.store import StoreFactory, StoreLayout
from postoffice.store.cache import StoreCache

DOMAIN = "example.test"


async def test_an_alias_with_one_full_member_is_accepted(tmp_path: Path) -> None:
    config_file = tmp_path / "postoffice.toml"
    config_file.write_text(
        f'hostname = "mail.{DOMAIN}"\nprimary_domain = "{DOMAIN}"\n', encoding="utf-8"
    )
    loaded = load_config(config_file)
    accounts = AccountDatabase(
        loaded.paths.directory_db,
        hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
    )
    accounts.add_domain(DOMAIN)
    accounts.add_user(parse_address(f"alice@{DOMAIN}"), "pw", quota_messages=1)
    accounts.add_user(parse_address(f"bob@{DOMAIN}"), "pw")
    accounts.close()
    loaded.paths.tables_dir.mkdir(parents=True)
    (loaded.paths.tables_dir / "aliases").write_text("staff: alice, bob\n", encoding="utf-8")
    factory = StoreFactory(StoreLayout(tmp_path / "mail", "maildir", DOMAIN, fsync=False))
    async with await factory.open(f"alice@{DOMAIN}") as store:
        await store.append("INBOX", b"Subject: one\r\n\r\nher one message\r\n")
    directory = Directory(loaded.config, loaded.paths)
    stores = StoreCache(factory)
    policy = SmtpPolicy(directory, loaded.config, QuotaGuard(directory.accounts, stores))
    client = ClientFacts(ip="127.0.0.2")

    async def rcpt(address: str) -> str:
        verdict = policy.on_rcpt(client, None, parse_address(address))
        verdict = await policy.on_rcpt_quota(verdict, None)
        return f"{verdict.reply.code} {verdict.reply.enhanced}"

    try:
        assert await rcpt(f"alice@{DOMAIN}") == "452 4.2.2"  # her own address: full
        assert await rcpt(f"bob@{DOMAIN}") == "250 2.1.5"
        # bob has room; alice's copy is the delivery's to defer
        assert await rcpt(f"staff@{DOMAIN}") == "250 2.1.5"
    finally:
        await stores.close()
        directory.close()
