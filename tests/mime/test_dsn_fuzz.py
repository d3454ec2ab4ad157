"""Delivery status notifications under any text: whatever the remote host, the
addresses and the original say, the report keeps its structure (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postoffice.core.address import Address
from postoffice.core.envelope import OriginalRecipient, Ret
from postoffice.mime.dsn import DsnRecipient
from postoffice.mime.sections import is_crlf_clean, to_crlf
from tests.mime.test_dsn import (
    BOB,
    NOW,
    ORIGINAL,
    build,
    make_report,
    parse,
    parts,
    raw_blocks,
    raw_part,
)

# -- any text --------------------------------------------------------------------

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANY_TEXT = st.text(max_size=300)
SOME_TEXT = st.text(min_size=1, max_size=80)


@FUZZ
@given(
    final=SOME_TEXT,
    orcpt=st.none() | SOME_TEXT,
    remote=st.none() | ANY_TEXT,
    diagnostic=st.none() | ANY_TEXT,
    local=SOME_TEXT,
    ret=st.sampled_from([None, Ret.FULL, Ret.HDRS]),
    original=st.just(ORIGINAL) | st.binary(max_size=300),
    size_limit=st.integers(min_value=0, max_value=400),
)
def test_any_text_keeps_the_structure(
    final: str,
    orcpt: str | None,
    remote: str | None,
    diagnostic: str | None,
    local: str,
    ret: Ret | None,
    original: bytes,
    size_limit: int,
) -> None:
    recipient = DsnRecipient(
        final,
        "failed",
        "5.1.1",
        original_recipient=None if orcpt is None else OriginalRecipient("rfc822", orcpt),
        remote_mta=remote,
        diagnostic=diagnostic,
        last_attempt=NOW,
    )
    report = make_report(recipient, BOB, sender=Address(local, "a.test"), ret=ret)
    data = build(report, original, size_limit=size_limit)
    assert is_crlf_clean(data)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    message = parse(data)
    assert message.get_param("report-type") in ("delivery-status", "global-delivery-status")
    types = [part.get_content_type() for part in parts(data)]
    assert types[0] == "text/plain"
    assert types[1] in ("message/delivery-status", "message/global-delivery-status")
    per_message, first, second = raw_blocks(data)
    assert per_message["Reporting-MTA"] == "dns; a.test"
    for block, action in ((first, "failed"), (second, "failed")):
        assert block.get_all("Action") == [action]
        assert block.get_all("Status") == ["5.1.1"]
        assert len(block.get_all("Final-Recipient") or []) == 1
        assert len(block.get_all("Original-Recipient") or []) <= 1
    assert second["Final-Recipient"] == "rfc822; bob@b.test"
    assert ("Original-Recipient" in first) == (orcpt is not None)
    returned = raw_part(data, 2)[1]
    whole = to_crlf(original)
    if whole and not whole.endswith(b"\r\n"):
        whole += b"\r\n"  # the last line gets its line end
    if types[2] in ("message/rfc822", "message/global"):
        assert ret is not Ret.HDRS
        assert len(original) <= size_limit
        assert returned == whole
    else:
        assert len(returned) <= size_limit
        assert whole.startswith(returned)
