"""The directory as one object: accounts, domains, tables and the routing decision.

``Directory`` is what the server and the CLI hold. It implements
``DirectoryView`` for the pure routing function (local domains are the
union of the domain table, the ``local-host-names`` file and the host name
itself, as sendmail's class {w} includes ``$j``), and it is the only place
that builds the ``RoutingPolicy`` from the configuration, so every caller
routes with the same rules.

One decision reads one ``TableSnapshot``: ``route()`` and ``explain()`` take a
snapshot once and hand the routing function a view bound to it, so the
local-domain check made at every expansion step neither re-stats the table
files each time nor sees a reload half-way through a decision.

The server builds it with ``table_check_interval`` and ``lookup_cache_ttl``
(1 s each, ``SERVER_CHECK_INTERVAL``): table files are re-checked, and the
domain table and each address's account re-read, at most once a second, so
no per-message ``stat`` storm and no SQLite query on the event loop per RCPT;
a change made by another process (``postoffice domain add``, an edited table)
is seen within 1 s, a change through this ``AccountDatabase`` at once. The defaults (0) check every
time, as the CLI and tests expect.
"""

from __future__ import annotations

from postoffice.config.model import Config, Paths
from postoffice.core.address import Address
from postoffice.directory.accounts import AccountDatabase
from postoffice.directory.explain import explain
from postoffice.directory.routing import NullSender, RoutingPolicy, RoutingResult, route
from postoffice.directory.tables.tableset import TableSet, TableSnapshot


def routing_policy(config: Config) -> RoutingPolicy:
    return RoutingPolicy(
        primary_domain=config.primary_domain,
        allow_program_targets=config.aliases.allow_program_targets,
        allow_file_targets=config.aliases.allow_file_targets,
        max_alias_depth=config.aliases.max_depth,
        max_fanout=config.aliases.max_fanout,
        detail_separator=config.directory.detail_separator,
    )


class Directory:
    """Accounts, domains and tables of one configuration (see module doc)."""

    def __init__(
        self,
        config: Config,
        paths: Paths,
        *,
        table_check_interval: float = 0.0,
        lookup_cache_ttl: float = 0.0,
    ):
        self.config = config
        self.paths = paths
        self.accounts = AccountDatabase(paths.directory_db, cache_ttl=lookup_cache_ttl)
        self.policy = routing_policy(config)
        self.table_check_interval = table_check_interval
        self._tables: TableSet | None = None

    @property
    def tables(self) -> TableSet:
        """The tables, loaded on first use (a broken file raises ``TableError`` then)."""
        if self._tables is None:
            self._tables = TableSet(self.paths.tables_dir, check_interval=self.table_check_interval)
        return self._tables

    def close(self) -> None:
        self.accounts.close()

    # -- DirectoryView ----------------------------------------------------------

    def is_local_domain(self, domain: str) -> bool:
        return self._is_local_domain(domain, self.tables.snapshot())

    def _is_local_domain(self, domain: str, snapshot: TableSnapshot) -> bool:
        return (
            domain == self.config.hostname
            or domain in snapshot.local_host_names
            or self.accounts.has_domain(domain)
        )

    def has_account(self, address: Address) -> bool:
        return self.accounts.is_enabled(address)

    # -- queries ------------------------------------------------------------------

    def local_domains(self) -> list[tuple[str, str]]:
        """Every local domain with where it comes from, sorted by name."""
        found: dict[str, str] = {self.config.hostname: "host name"}
        for name in self.tables.snapshot().local_host_names:
            found[name] = "local-host-names"
        for name in self.accounts.domains():
            found[name] = "domain table"
        return sorted(found.items())

    def route(
        self,
        recipient: Address,
        *,
        sender: Address | NullSender | None = None,
        client_ip: str | None = None,
        client_hostname: str | None = None,
    ) -> RoutingResult:
        """The routing decision for one recipient, with the current tables."""
        snapshot = self.tables.snapshot()
        return route(
            recipient,
            tables=snapshot,
            view=_SnapshotView(self, snapshot),
            policy=self.policy,
            sender=sender,
            client_ip=client_ip,
            client_hostname=client_hostname,
        )

    def explain(
        self,
        recipient_text: str,
        *,
        sender: str | None = None,
        client_ip: str | None = None,
        client_hostname: str | None = None,
    ) -> str:
        """``postoffice explain``: the decision for one recipient, step by step."""
        snapshot = self.tables.snapshot()
        return explain(
            recipient_text,
            tables=snapshot,
            view=_SnapshotView(self, snapshot),
            policy=self.policy,
            sender=sender,
            client_ip=client_ip,
            client_hostname=client_hostname,
        )


class _SnapshotView:
    """``DirectoryView`` of a ``Directory`` for one decision, on one table snapshot."""

    def __init__(self, directory: Directory, snapshot: TableSnapshot):
        self._directory = directory
        self._snapshot = snapshot

    def is_local_domain(self, domain: str) -> bool:
        return self._directory._is_local_domain(domain, self._snapshot)

    def has_account(self, address: Address) -> bool:
        return self._directory.has_account(address)
