"""``postoffice dkim keygen|show`` and ``postoffice dns`` on a real temporary setup.

Every output is read back as a zone file with dnspython, and the DKIM record
printed must verify what the signer signs with the key it names. No network.
"""

from __future__ import annotations

import itertools
import stat
from pathlib import Path

import dkim
import dns.name
import dns.rdatatype
import dns.zone
import pytest

from postoffice.mailauth.dkim_sign import DkimSigner
from tests.integration.conftest import CliRunner

DOMAIN = "example.test"
DKIM_NAME = f"postoffice._domainkey.{DOMAIN}."
MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: bob@other.test\r\n"
    b"Subject: signed\r\n"
    b"Date: Mon, 3 Mar 2025 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.test>\r\n"
    b"\r\n"
    b"Hello Bob.\r\n"
)


def parse_zone(text: str, origin: str = DOMAIN) -> dns.zone.Zone:
    return dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)


def records(zone: dns.zone.Zone, name: str, rdtype: str) -> list[str]:
    found = zone.get_rdataset(dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
    return [] if found is None else [rdata.to_text() for rdata in found]


def txt_values(zone: dns.zone.Zone, name: str) -> list[str]:
    found = zone.get_rdataset(dns.name.from_text(name), dns.rdatatype.TXT)
    if found is None:
        return []
    return [b"".join(rdata.strings).decode("ascii") for rdata in found]


def data_dir(config: Path) -> Path:
    return config.parent


def verifies(config: Path, record: str, selector: str = "postoffice") -> bool:
    signer = DkimSigner(data_dir(config) / "etc" / "dkim", selector)
    field = signer.sign(MESSAGE, DOMAIN)
    assert field is not None

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        wanted = f"{selector}._domainkey.{DOMAIN}."
        return record.encode("ascii") if name.decode("ascii").lower() == wanted else None

    return bool(dkim.verify(field + MESSAGE, dnsfunc=lookup))


def keygen(run_cli: CliRunner, config: Path, *args: str) -> str:
    result = run_cli("-c", str(config), "dkim", "keygen", *args)
    assert result.code == 0, result.err
    return result.out


def test_keygen_prints_a_record_that_verifies(setup_dir: Path, run_cli: CliRunner) -> None:
    out = keygen(run_cli, setup_dir, DOMAIN)
    key = data_dir(setup_dir) / "etc" / "dkim" / "example.test.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert str(key) in out
    lines = [line for line in out.splitlines() if not line.startswith(";")]
    assert len(lines) == 1
    assert lines[0].startswith(f"{DKIM_NAME} 3600 IN TXT ( ")
    zone = parse_zone(out)
    [value] = txt_values(zone, DKIM_NAME)
    assert value.startswith("v=DKIM1; k=rsa; p=")
    txt = zone.get_rdataset(dns.name.from_text(DKIM_NAME), dns.rdatatype.TXT)
    assert txt is not None
    assert all(len(s) <= 255 for rdata in txt for s in rdata.strings)  # RFC 1035 §3.3
    assert verifies(setup_dir, value)


def test_keygen_bits_and_replace(setup_dir: Path, run_cli: CliRunner) -> None:
    first = txt_values(parse_zone(keygen(run_cli, setup_dir, DOMAIN, "--bits", "1024")), DKIM_NAME)
    again = run_cli("-c", str(setup_dir), "dkim", "keygen", DOMAIN)
    assert again.code == 1
    assert "exists already" in again.err and "--replace" in again.err
    assert verifies(setup_dir, first[0])
    out = keygen(run_cli, setup_dir, DOMAIN, "--replace", "--bits", "3072")
    second = txt_values(parse_zone(out), DKIM_NAME)
    assert second != first
    assert verifies(setup_dir, second[0])
    assert not verifies(setup_dir, first[0])
    txt = parse_zone(out).get_rdataset(dns.name.from_text(DKIM_NAME), dns.rdatatype.TXT)
    assert txt is not None
    assert max(len(rdata.strings) for rdata in txt) > 2  # a 3072-bit key takes three strings
    small = run_cli("-c", str(setup_dir), "dkim", "keygen", DOMAIN, "--replace", "--bits", "512")
    assert small.code == 2 and "--bits" in small.err


def test_keygen_canonicalises_and_warns_about_other_domains(
    setup_dir: Path, run_cli: CliRunner
) -> None:
    result = run_cli("-c", str(setup_dir), "dkim", "keygen", "Other.TEST.")
    assert result.code == 0, result.err
    assert "warning: other.test is not a local domain" in result.err
    assert (data_dir(setup_dir) / "etc" / "dkim" / "other.test.key").is_file()
    assert "postoffice._domainkey.other.test. 3600 IN TXT" in result.out
    local = run_cli("-c", str(setup_dir), "dkim", "keygen", "EXAMPLE.test")
    assert local.code == 0 and "warning" not in local.err
    assert (data_dir(setup_dir) / "etc" / "dkim" / "example.test.key").is_file()


@pytest.mark.parametrize("domain", ["[192.0.2.1]", "bad..domain", "../etc"])
def test_keygen_refuses_what_is_not_a_domain(
    setup_dir: Path, run_cli: CliRunner, domain: str
) -> None:
    result = run_cli("-c", str(setup_dir), "dkim", "keygen", domain)
    assert result.code == 2
    assert "DOMAIN" in result.err
    assert not (data_dir(setup_dir) / "etc" / "dkim").exists()


def test_show(setup_dir: Path, run_cli: CliRunner) -> None:
    missing = run_cli("-c", str(setup_dir), "dkim", "show", DOMAIN)
    assert missing.code == 1
    assert f"postoffice dkim keygen {DOMAIN}" in missing.err
    made = txt_values(parse_zone(keygen(run_cli, setup_dir, DOMAIN)), DKIM_NAME)
    shown = run_cli("-c", str(setup_dir), "dkim", "show", DOMAIN)
    assert shown.code == 0, shown.err
    assert txt_values(parse_zone(shown.out), DKIM_NAME) == made


def test_a_broken_key_is_reported(setup_dir: Path, run_cli: CliRunner) -> None:
    keygen(run_cli, setup_dir, DOMAIN)
    (data_dir(setup_dir) / "etc" / "dkim" / "example.test.key").write_text("garbage\n")
    for command in (("dkim", "show", DOMAIN), ("dns", DOMAIN)):
        result = run_cli("-c", str(setup_dir), *command)
        assert result.code == 1
        assert "example.test.key" in result.err and "not a usable DKIM key" in result.err
        assert result.out == ""


def test_dns_before_keygen(setup_dir: Path, run_cli: CliRunner) -> None:
    result = run_cli("-c", str(setup_dir), "dns", DOMAIN)
    assert result.code == 0, result.err
    assert result.err == ""
    lines = result.out.splitlines()
    assert lines[0].startswith("; MX")
    assert lines[1] == f"{DOMAIN}. 3600 IN MX 0 mail.example.test."
    zone = parse_zone(result.out)
    assert records(zone, f"{DOMAIN}.", "MX") == ["0 mail.example.test."]
    assert txt_values(zone, f"{DOMAIN}.") == ["v=spf1 mx -all"]
    assert txt_values(zone, f"_dmarc.{DOMAIN}.") == [
        "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test"
    ]
    assert txt_values(zone, DKIM_NAME) == []
    assert f"run `postoffice dkim keygen {DOMAIN}`" in result.out
    # The listeners of a fresh setup are on loopback: no address to publish.
    assert records(zone, "mail.example.test.", "A") == []
    assert "; mail.example.test. 3600 IN A <this host's public IPv4 address>" in lines
    assert any(line.startswith("; PTR") for line in lines)
    # Every record is preceded by a comment saying what it is for.
    for before, line in itertools.pairwise(lines):
        if not line.startswith(";"):
            assert before.startswith(";"), line


def test_dns_after_keygen(setup_dir: Path, run_cli: CliRunner) -> None:
    made = txt_values(parse_zone(keygen(run_cli, setup_dir, DOMAIN)), DKIM_NAME)
    result = run_cli("-c", str(setup_dir), "dns", DOMAIN)
    assert result.code == 0, result.err
    zone = parse_zone(result.out)
    [value] = txt_values(zone, DKIM_NAME)
    assert [value] == made
    assert verifies(setup_dir, value)
    assert "dkim keygen" not in result.out
    assert records(zone, f"{DOMAIN}.", "MX") == ["0 mail.example.test."]
    assert txt_values(zone, f"{DOMAIN}.") == ["v=spf1 mx -all"]
    assert len(txt_values(zone, f"_dmarc.{DOMAIN}.")) == 1


def test_dns_uses_the_configured_selector(setup_dir: Path, run_cli: CliRunner) -> None:
    text = setup_dir.read_text(encoding="utf-8")
    text = text.replace('selector = "postoffice"', 'selector = "s2025"', 1)
    text = text.replace("sign = true", "sign = false", 1)
    setup_dir.write_text(text, encoding="utf-8")
    made = txt_values(parse_zone(keygen(run_cli, setup_dir, DOMAIN)), f"s2025._domainkey.{DOMAIN}.")
    result = run_cli("-c", str(setup_dir), "dns", DOMAIN)
    zone = parse_zone(result.out)
    assert txt_values(zone, f"s2025._domainkey.{DOMAIN}.") == made
    assert verifies(setup_dir, made[0], selector="s2025")
    assert "sign = false" in result.out


def test_dns_with_public_listeners(tmp_path: Path, run_cli: CliRunner) -> None:
    data = tmp_path / "var"
    init = run_cli(
        "init",
        "--data-dir",
        str(data),
        "--domain",
        DOMAIN,
        "--listen",
        "smtp=127.0.0.1:25",
        "--listen",
        "smtp=0.0.0.0:25",
        "--listen",
        "smtp=192.0.2.10:25",
        "--listen",
        "imaps=[2001:db8::5]:993",
    )
    assert init.code == 0, init.err
    result = run_cli("-c", str(data / "postoffice.toml"), "dns", DOMAIN)
    assert result.code == 0, result.err
    zone = parse_zone(result.out)
    assert records(zone, "mail.example.test.", "A") == ["192.0.2.10"]
    assert records(zone, "mail.example.test.", "AAAA") == ["2001:db8::5"]
    assert "; 10.2.0.192.in-addr.arpa. 3600 IN PTR mail.example.test." in result.out
    assert "2001:db8::5 is not a public address" in result.out  # documentation prefix


def test_dns_for_a_host_outside_the_domain(tmp_path: Path, run_cli: CliRunner) -> None:
    data = tmp_path / "var"
    init = run_cli(
        "init",
        "--data-dir",
        str(data),
        "--domain",
        DOMAIN,
        "--hostname",
        "mx.provider.test",
        "--listen",
        "smtp=192.0.2.20:25",
    )
    assert init.code == 0, init.err
    result = run_cli("-c", str(data / "postoffice.toml"), "dns", "Example.Test")
    assert result.code == 0, result.err
    zone = parse_zone(result.out)
    assert records(zone, f"{DOMAIN}.", "MX") == ["0 mx.provider.test."]
    # The host's own address records belong in provider.test's zone: shown, commented.
    assert "; mx.provider.test. 3600 IN A 192.0.2.20" in result.out
    assert all(name.is_subdomain(dns.name.from_text(f"{DOMAIN}.")) for name in zone.nodes)


def test_dns_warns_about_other_domains(setup_dir: Path, run_cli: CliRunner) -> None:
    result = run_cli("-c", str(setup_dir), "dns", "elsewhere.test")
    assert result.code == 0
    assert "warning: elsewhere.test is not a local domain" in result.err
    zone = parse_zone(result.out, origin="elsewhere.test")
    assert records(zone, "elsewhere.test.", "MX") == ["0 mail.example.test."]
    assert txt_values(zone, "_dmarc.elsewhere.test.") == [
        "v=DMARC1; p=quarantine; rua=mailto:postmaster@elsewhere.test"
    ]


def test_dns_refuses_an_address_literal(setup_dir: Path, run_cli: CliRunner) -> None:
    result = run_cli("-c", str(setup_dir), "dns", "[192.0.2.1]")
    assert result.code == 2 and "address literal" in result.err
