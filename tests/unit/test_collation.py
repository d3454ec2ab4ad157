"""``mime.collation.collation_key`` (RFC 5051 i;unicode-casemap): the ASCII fast
path gives what the general mapping (titlecase each character, then NFKD) gives."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.mime.collation import collation_key


def general(text: str) -> str:
    titled = "".join(t if len(t := char.title()) == 1 else char for char in text)
    return unicodedata.normalize("NFKD", titled)


def test_every_ascii_character_maps_as_the_general_rule_says() -> None:
    every = "".join(chr(code) for code in range(128))
    assert collation_key(every) == general(every)
    assert collation_key("Re: aBc [x]") == "RE: ABC [X]"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_maps_as_the_general_rule_says(text: str) -> None:
    assert collation_key(text) == general(text)


def test_non_ascii_keeps_the_rfc_5051_examples() -> None:
    assert collation_key("Jörg") == "JO\u0308RG"  # sorts before "JUDY"
    assert collation_key("ß") == "ß"  # no one-character titlecase
