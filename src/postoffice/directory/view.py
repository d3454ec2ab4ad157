"""What the routing decision needs to know about accounts and domains.

The routing function is pure: it reads the directory through this protocol,
which ``directory.directory.Directory`` implements over SQLite and the
``local-host-names`` file, and which tests implement with plain sets.
"""

from __future__ import annotations

from typing import Protocol

from postoffice.core.address import Address


class DirectoryView(Protocol):
    def is_local_domain(self, domain: str) -> bool:
        """True when mail for ``domain`` (canonical form) is delivered on this host."""
        ...

    def has_account(self, address: Address) -> bool:
        """True when ``address`` (compared by ``address.key``) is an enabled mailbox."""
        ...
