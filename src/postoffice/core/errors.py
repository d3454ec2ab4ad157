"""The error tree of postoffice.

Every error the project raises on purpose derives from ``PostofficeError``.
Errors about operator input (config, tables, names) say *where* the fault is
(file, key, line) so that ``postoffice check`` can print it as it stands.
Protocol layers raise errors that carry their wire reply (see ``core.reply``).
"""

from __future__ import annotations

from pathlib import Path


class PostofficeError(Exception):
    """Base of every error postoffice raises deliberately."""


class ConfigError(PostofficeError):
    """The configuration is wrong: names the file, the key and what was expected."""

    def __init__(self, message: str, *, file: Path | str | None = None, key: str | None = None):
        self.file = Path(file) if file is not None else None
        self.key = key
        self.detail = message
        where = ""
        if self.file is not None:
            where = f"{self.file}: "
        if key:
            where += f"{key}: "
        super().__init__(f"{where}{message}")


class TableError(PostofficeError):
    """A line of a sendmail-format table is wrong: names the file and the line."""

    def __init__(self, message: str, *, file: Path | str | None = None, line: int | None = None):
        self.file = Path(file) if file is not None else None
        self.line = line
        self.detail = message
        where = ""
        if self.file is not None:
            where = f"{self.file}:{line}: " if line is not None else f"{self.file}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{message}")


class AddressError(PostofficeError, ValueError):
    """A string is not a valid mail address (RFC 5321 §4.1.2, RFC 5322 §3.4.1)."""


class MailboxNameError(PostofficeError, ValueError):
    """A mailbox name is unsafe or malformed; it never reaches the file system."""


class AccountError(PostofficeError):
    """An account operation failed (unknown user, duplicate, bad domain)."""


class StoreError(PostofficeError):
    """A mailbox store operation failed (no such mailbox, no such message...)."""


class MailboxNotFound(StoreError):
    """The named mailbox does not exist (IMAP ``[NONEXISTENT]``/``[TRYCREATE]``, RFC 5530)."""


class MailboxExists(StoreError):
    """A mailbox of that name exists already (IMAP ``[ALREADYEXISTS]``, RFC 5530)."""


class MailboxNotPossible(StoreError):
    """The store cannot make that mailbox there (mbox: a mailbox file cannot hold
    other mailboxes): IMAP ``[CANNOT]``, RFC 5530."""
