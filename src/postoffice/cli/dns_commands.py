"""``postoffice dkim keygen|show`` and ``postoffice dns``: the DNS records the operator publishes.

Owns the zone-file rendering of those records: MX, A/AAAA, SPF, DKIM, DMARC
and a note about PTR. Nothing here queries DNS; the output is what the
records should be, for the operator to paste into the domain's zone.

Invariants:

- Everything printed on stdout is valid zone-file syntax (RFC 1035 §5):
  records with absolute names and an explicit TTL (so no ``$TTL`` directive
  is needed and none of the operator's is changed), everything else a ``;``
  comment. Warnings go to stderr.
- A TXT value longer than one character-string is split into strings of at
  most 255 octets (RFC 1035 §3.3.14, RFC 6376 §3.6.2.2); verifiers join them
  without separators, so the value is unchanged.
- Domains are canonical (lower case, A-labels) before they name a record or
  a key file.
"""

from __future__ import annotations

import ipaddress

import click

from postoffice.cli.context import config_option, load
from postoffice.config.loader import LoadedConfig
from postoffice.core.address import canonical_domain
from postoffice.core.errors import AddressError
from postoffice.directory.directory import Directory
from postoffice.mailauth.dkim_sign import (
    DEFAULT_BITS,
    MAX_BITS,
    MIN_BITS,
    dns_txt_record,
    generate_key,
    key_file,
)

TTL = 3600  # one hour: short enough to fix a mistake the same day
MAX_CHARACTER_STRING = 255  # RFC 1035 §3.3: one <character-string> holds 255 octets


def _domain_argument(value: str) -> str:
    try:
        domain = canonical_domain(value)
    except AddressError as exc:
        raise click.BadParameter(str(exc), param_hint="DOMAIN") from exc
    if domain.startswith("["):
        raise click.BadParameter(
            f"{value} is an address literal, not a domain", param_hint="DOMAIN"
        )
    return domain


def _warn_unless_local(loaded: LoadedConfig, domain: str) -> None:
    directory = Directory(loaded.config, loaded.paths)
    try:
        local = directory.is_local_domain(domain)
    finally:
        directory.close()
    if not local:
        click.echo(
            f"warning: {domain} is not a local domain of this host "
            f"(`postoffice domain add {domain}` makes it one)",
            err=True,
        )


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def character_strings(value: str) -> list[str]:
    """``value`` as TXT character-strings: whole if it fits in one, else the tags
    before ``p=`` in one string and p= in pieces of 255 octets."""
    if len(value.encode("utf-8")) <= MAX_CHARACTER_STRING:
        return [value]
    head, marker, key = value.partition("p=")
    if not marker:
        head, key = "", value
    else:
        key = marker + key
    pieces = [head] if head else []
    pieces += [
        key[start : start + MAX_CHARACTER_STRING]
        for start in range(0, len(key), MAX_CHARACTER_STRING)
    ]
    return pieces


def txt_line(owner: str, value: str) -> str:
    """One zone-file TXT record for ``owner`` (a domain without the final dot)."""
    strings = character_strings(value)
    if len(strings) == 1:
        return f"{owner}. {TTL} IN TXT {_quoted(strings[0])}"
    return f"{owner}. {TTL} IN TXT ( {' '.join(_quoted(s) for s in strings)} )"


def dkim_owner(selector: str, domain: str) -> str:
    """Where a DKIM key is published: ``SELECTOR._domainkey.DOMAIN`` (RFC 6376 §3.6.2.1)."""
    return f"{selector}._domainkey.{domain}"


@click.group("dkim")
def dkim_group() -> None:
    """Make DKIM signing keys and show the DNS records that publish them."""


@dkim_group.command("keygen")
@config_option
@click.argument("domain")
@click.option(
    "--bits",
    type=click.IntRange(MIN_BITS, MAX_BITS),
    default=DEFAULT_BITS,
    show_default=True,
    help="RSA key size.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace an existing key (mail signed with the old one and still in transit "
    "fails DKIM once the new record is published).",
)
@click.pass_context
def dkim_keygen(ctx: click.Context, domain: str, bits: int, replace: bool) -> None:
    """Create the DKIM key of DOMAIN and print the TXT record to publish."""
    name = _domain_argument(domain)
    loaded = load(ctx)
    _warn_unless_local(loaded, name)
    path = generate_key(loaded.paths.dkim_keys_dir, name, bits=bits, replace=replace)
    selector = loaded.config.dkim.selector
    click.echo(f"; DKIM key of {name}: {path} ({bits}-bit RSA, selector {selector})")
    click.echo(f"; publish this record in the zone of {name}:")
    click.echo(txt_line(dkim_owner(selector, name), dns_txt_record(path)))


@dkim_group.command("show")
@config_option
@click.argument("domain")
@click.pass_context
def dkim_show(ctx: click.Context, domain: str) -> None:
    """Print the TXT record that publishes the DKIM key of DOMAIN."""
    name = _domain_argument(domain)
    loaded = load(ctx)
    path = key_file(loaded.paths.dkim_keys_dir, name)
    if not path.is_file():
        raise click.ClickException(
            f"{name} has no DKIM key ({path}): run `postoffice dkim keygen {name}`"
        )
    click.echo(txt_line(dkim_owner(loaded.config.dkim.selector, name), dns_txt_record(path)))


def _listener_addresses(
    loaded: LoadedConfig,
) -> tuple[ipaddress.IPv4Address | None, ipaddress.IPv6Address | None]:
    """The first usable (not loopback, not wildcard) IPv4 and IPv6 listener address."""
    v4: ipaddress.IPv4Address | None = None
    v6: ipaddress.IPv6Address | None = None
    for _proto, host, _port in loaded.config.listen.endpoints():
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            continue  # a host name, not an address
        if address.is_loopback or address.is_unspecified:
            continue
        if isinstance(address, ipaddress.IPv4Address):
            v4 = v4 or address
        else:
            v6 = v6 or address
    return v4, v6


def _address_lines(
    hostname: str,
    rtype: str,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    in_zone: bool,
) -> list[str]:
    if address is None:
        family = "IPv4" if rtype == "A" else "IPv6"
        hint = "" if rtype == "A" else ", if it has one"
        return [f"; {hostname}. {TTL} IN {rtype} <this host's public {family} address{hint}>"]
    record = f"{hostname}. {TTL} IN {rtype} {address}"
    lines = [record if in_zone else f"; {record}"]
    if not address.is_global:
        lines.append(f"; note: {address} is not a public address; the Internet needs one")
    return lines


def dns_records(loaded: LoadedConfig, domain: str) -> list[str]:
    """The zone-file lines of every record ``domain`` needs for mail to and from this host."""
    config = loaded.config
    hostname = config.hostname
    in_zone = hostname == domain or hostname.endswith(f".{domain}")
    v4, v6 = _listener_addresses(loaded)
    lines = [
        f"; MX: mail for {domain} goes to the mail host {hostname} (RFC 5321 §5.1)",
        f"{domain}. {TTL} IN MX 0 {hostname}.",
        f"; A/AAAA: the address of the mail host {hostname}",
    ]
    if not in_zone:
        lines.append(f"; ({hostname} is outside {domain}: these belong in its own zone)")
    lines += _address_lines(hostname, "A", v4, in_zone)
    lines += _address_lines(hostname, "AAAA", v6, in_zone)
    lines += [
        f"; SPF: only the MX hosts of {domain} send its mail; the rest fail (RFC 7208)",
        txt_line(domain, "v=spf1 mx -all"),
        "; DKIM: the public key that verifies this host's signatures (RFC 6376 §3.6.1)",
    ]
    selector = config.dkim.selector
    key = key_file(loaded.paths.dkim_keys_dir, domain)
    if key.is_file():
        lines.append(txt_line(dkim_owner(selector, domain), dns_txt_record(key)))
        if not config.dkim.sign:
            lines.append("; note: [dkim] sign = false in the config: mail leaves unsigned")
    else:
        lines.append(f"; {domain} has no DKIM key yet: run `postoffice dkim keygen {domain}`")
    lines += [
        "; DMARC: receivers quarantine mail that fails both SPF and DKIM alignment, "
        "and report to postmaster (RFC 7489 §6.3)",
        txt_line(f"_dmarc.{domain}", f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"),
        f"; PTR: the reverse DNS of the mail host's address must name {hostname};",
        "; it lives in the zone of whoever owns the address (ask the provider)",
    ]
    for address in (v4, v6):
        if address is not None:
            lines.append(f"; {address.reverse_pointer}. {TTL} IN PTR {hostname}.")
    return lines


@click.command("dns")
@config_option
@click.argument("domain")
@click.pass_context
def dns_command(ctx: click.Context, domain: str) -> None:
    """Print the DNS records DOMAIN needs (MX, A, SPF, DKIM, DMARC), as zone-file lines."""
    name = _domain_argument(domain)
    loaded = load(ctx)
    _warn_unless_local(loaded, name)
    for line in dns_records(loaded, name):
        click.echo(line)
