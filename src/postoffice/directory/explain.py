"""``postoffice explain``: the routing decision for one recipient, as readable text.

Owns the rendering of a ``RoutingResult`` trace, step by step (which table
entry matched, at which file:line, what it became), followed by the outcome:
the modern face of ``sendmail -bv`` (verify) and ``-bt`` (address test mode).
It decides nothing itself: ``explain()`` parses its arguments and calls
``route()``, the one routing decision.
"""

from __future__ import annotations

from postoffice.core.address import Address, parse_address
from postoffice.directory.routing import (
    NULL_SENDER,
    FileDelivery,
    LocalDelivery,
    NullSender,
    ProgramDelivery,
    RemoteDelivery,
    RoutingPolicy,
    RoutingResult,
    route,
)
from postoffice.directory.tables.tableset import TableSnapshot
from postoffice.directory.view import DirectoryView

_SOURCE_WIDTH = 13
_WHERE_WIDTH = 28


def parse_envelope_address(text: str, *, default_domain: str) -> Address:
    """An address as typed on the command line: ``<a@b>``, ``a@b`` or a local name."""
    return parse_address(
        text.strip().removeprefix("<").removesuffix(">"), default_domain=default_domain
    )


def explain(
    recipient_text: str,
    *,
    tables: TableSnapshot,
    view: DirectoryView,
    policy: RoutingPolicy,
    sender: str | None = None,
    client_ip: str | None = None,
    client_hostname: str | None = None,
) -> str:
    """Route ``recipient_text`` and render the decision; raises ``AddressError`` if unparsable.

    ``sender`` ``""`` or ``"<>"`` is the null sender; a bare local name is
    qualified with ``policy.primary_domain`` (as ``sendmail -bv`` does).
    """
    recipient = parse_envelope_address(recipient_text, default_domain=policy.primary_domain)
    envelope_sender: Address | NullSender | None = None
    if sender is not None:
        if sender.strip() in ("", "<>"):
            envelope_sender = NULL_SENDER
        else:
            envelope_sender = parse_envelope_address(sender, default_domain=policy.primary_domain)
    result = route(
        recipient,
        tables=tables,
        view=view,
        policy=policy,
        sender=envelope_sender,
        client_ip=client_ip,
        client_hostname=client_hostname,
    )
    header = [f"recipient: {recipient}"]
    if envelope_sender is not None:
        header.append(f"sender:    <{'' if envelope_sender == NULL_SENDER else envelope_sender}>")
    if client_ip is not None:
        header.append(f"client:    {client_hostname or 'unknown'} [{client_ip}]")
    return "\n".join([*header, "", render_result(result)])


def render_result(result: RoutingResult) -> str:
    """The trace, numbered and indented by expansion depth, then the outcome."""
    lines = ["steps:"]
    for number, step in enumerate(result.trace, start=1):
        indent = "  " * step.depth
        where = step.location or "-"
        lines.append(
            f"  {number:>2}. {indent}{step.source:<{_SOURCE_WIDTH}} {where:<{_WHERE_WIDTH}} "
            f"{step.matched} -> {step.result}"
        )
    if not result.trace:
        lines.append("  (no table entry applied)")
    lines.append("")
    lines.append("result:")
    lines.extend(f"  {line}" for line in _outcome(result))
    return "\n".join(lines) + "\n"


def _outcome(result: RoutingResult) -> list[str]:
    lines: list[str] = []
    if result.discard:
        lines.append("discard: accepted and thrown away (access DISCARD)")
    elif result.error is not None:
        lines.append(f"refused: {result.error}")
    for delivery in result.deliveries:
        lines.append(_describe(delivery))
    for failure in result.failures:
        lines.append(f"failed: {failure.target}: {failure.reply}")
    relay = "yes" if result.relay_allowed_by_access else "no"
    lines.append(f"relaying allowed by access: {relay}")
    return lines


def _describe(delivery: LocalDelivery | RemoteDelivery | ProgramDelivery | FileDelivery) -> str:
    if isinstance(delivery, LocalDelivery):
        detail = f" (detail {delivery.detail!r})" if delivery.detail else ""
        return f"deliver to mailbox {delivery.account}{detail}"
    if isinstance(delivery, RemoteDelivery):
        if delivery.route is None:
            return f"send to {delivery.address} (MX lookup for {delivery.address.domain})"
        return (
            f"send to {delivery.address} via {delivery.route} (mailertable {delivery.route.origin})"
        )
    if isinstance(delivery, ProgramDelivery):
        return f"pipe to program |{delivery.command} (alias {delivery.alias}, {delivery.origin})"
    return f"append to file {delivery.path} (alias {delivery.alias}, {delivery.origin})"
