"""Mailbox store: one async interface over Maildir and mbox, with a SQLite index.

Entry points::

    layout = StoreLayout(data_dir, format="maildir", primary_domain="example.test")
    factory = StoreFactory(layout)            # stores from one factory share a change feed
    store = await factory.open("alice@example.test")
    uid = await store.deliver(message_bytes)
    body = await store.read("INBOX", uid)

``api.py`` documents the value types and semantics; ``layout.py`` the files.
"""

from postoffice.store.api import (
    Change,
    ChangeKind,
    ConditionalStoreResult,
    ExpungedSince,
    FlagMode,
    MailboxChanges,
    MailboxInfo,
    MailboxStatus,
    MailboxVersion,
    MailStore,
    MessageFile,
    MessageInfo,
)
from postoffice.store.changes import ChangeHub, ChangeSubscription
from postoffice.store.layout import StoreLayout, UserPaths
from postoffice.store.service import FileMailStore, StoreFactory, open_store

__all__ = [
    "Change",
    "ChangeHub",
    "ChangeKind",
    "ChangeSubscription",
    "ConditionalStoreResult",
    "ExpungedSince",
    "FileMailStore",
    "FlagMode",
    "MailStore",
    "MailboxChanges",
    "MailboxInfo",
    "MailboxStatus",
    "MailboxVersion",
    "MessageFile",
    "MessageInfo",
    "StoreFactory",
    "StoreLayout",
    "UserPaths",
    "open_store",
]
