"""Trace headers (RFC 5321 §4.4) and the loop scan that reads them back."""

from __future__ import annotations

from datetime import UTC, datetime

from postoffice.core.address import parse_address
from postoffice.core.envelope import ClientInfo
from postoffice.mime.trace import (
    delivered_to_header,
    received_header,
    return_path_header,
    scan_trace,
)

WHEN = datetime(2026, 11, 26, 17, 30, 0, tzinfo=UTC)


def test_received_with_tls_and_one_recipient() -> None:
    client = ClientInfo(
        address="127.0.0.2",
        hostname=None,
        helo="client.test",
        protocol="ESMTPS",
        tls_version="TLSv1.3",
        tls_cipher="TLS_AES_256_GCM_SHA384",
    )
    header = received_header(
        client=client,
        by_host="mail.example.test",
        queue_id="4ABCDEFGH",
        when=WHEN,
        recipient=parse_address("bob@example.test"),
    )
    assert header == (
        b"Received: from client.test (unknown [127.0.0.2])\r\n"
        b"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
        b"\tby mail.example.test (postoffice) with ESMTPS id 4ABCDEFGH\r\n"
        b"\tfor <bob@example.test>; Thu, 26 Nov 2026 17:30:00 +0000\r\n"
    )


def test_received_can_withhold_the_submitting_client() -> None:
    client = ClientInfo(
        address="198.51.100.7",
        hostname="home.example.net",
        helo="laptop.home",
        protocol="ESMTPSA",
        authenticated_as="alice@example.test",
    )
    header = received_header(
        client=client, by_host="mx.test", queue_id="Q2", when=WHEN, withhold_client=True
    )
    assert header == (
        b"Received: from authenticated-client (client details withheld)\r\n"
        b"\tby mx.test (postoffice) with ESMTPSA id Q2; Thu, 26 Nov 2026 17:30:00 +0000\r\n"
    )
    shown = received_header(client=client, by_host="mx.test", queue_id="Q2", when=WHEN)
    assert b"laptop.home (home.example.net [198.51.100.7])" in shown


def test_received_without_recipient_and_ipv6() -> None:
    client = ClientInfo(address="::1", hostname="localhost", helo="h.test", protocol="ESMTP")
    header = received_header(client=client, by_host="mx.test", queue_id="Q1", when=WHEN)
    assert header.startswith(b"Received: from h.test (localhost [IPv6:::1])\r\n")
    assert header.endswith(
        b"\tby mx.test (postoffice) with ESMTP id Q1; Thu, 26 Nov 2026 17:30:00 +0000\r\n"
    )
    assert b"for <" not in header


def test_hostile_helo_cannot_forge_clauses_or_lines() -> None:
    client = ClientInfo(address="127.0.0.2", helo="evil)\r\nReceived: by (x", protocol="ESMTP")
    header = received_header(client=client, by_host="mx.test", queue_id="Q", when=WHEN)
    assert header.count(b"\r\n") == 2
    assert [line for line in header.split(b"\r\n") if line.startswith(b"Received:")] == [
        header.split(b"\r\n")[0]
    ]
    assert b" " not in header.split(b"\r\n")[0].split(b"from ", 1)[1].split(b" (")[0]
    first = header.split(b"\r\n")[0]
    assert first.count(b"(") == 1 and first.count(b")") == 1


def test_return_path_and_delivered_to() -> None:
    assert return_path_header(None) == b"Return-Path: <>\r\n"
    assert return_path_header(parse_address("a@b.test")) == b"Return-Path: <a@b.test>\r\n"
    assert (
        delivered_to_header(parse_address("Bob@Example.test"))
        == b"Delivered-To: Bob@example.test\r\n"
    )


def test_scan_counts_received_and_collects_delivered_to() -> None:
    message = (
        b"Received: from a\r\n\tby b; date\r\n"
        b"RECEIVED: from c by d\r\n"
        b"Delivered-To: Bob@Example.TEST\r\n"
        b"Subject: hi\r\n"
        b"\r\n"
        b"Received: in the body does not count\r\n"
        b"Delivered-To: nor@this.test\r\n"
    )
    summary = scan_trace(message)
    assert summary.received_count == 2
    assert summary.delivered_to == frozenset({"bob@example.test"})


def test_scan_handles_bare_lf_and_no_body() -> None:
    summary = scan_trace(b"Received: x\nReceived: y\nDelivered-To: a@b.test")
    assert summary.received_count == 2
    assert summary.delivered_to == frozenset({"a@b.test"})
