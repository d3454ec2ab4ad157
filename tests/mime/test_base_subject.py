"""RFC 5256 §2.1 base subject extraction (``mime.base_subject``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postoffice.mime.base_subject import base_subject
from postoffice.mime.decoding import decode_words


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("afternoon meeting", "afternoon meeting"),
        ("Re: afternoon meeting", "afternoon meeting"),  # subj-refwd "re"
        ("Fw: afternoon meeting", "afternoon meeting"),  # "fw"
        ("Fwd: afternoon meeting", "afternoon meeting"),  # "fw" "d"
        ("RE: FWD: re: x", "x"),  # ABNF strings are case-insensitive, repeated
        ("Re : x", "x"),  # subj-refwd allows *WSP before ":"
        ("Re[2]: x", "x"),  # subj-refwd with a subj-blob
        ("Re [2] : x", "x"),
        ("x (fwd)", "x"),  # subj-trailer
        ("x (FWD) (fwd)  ", "x"),  # trailers and white space, repeatedly
        ("Re: [list] Fwd: subject (fwd)", "subject"),
        ("[list] Re: subject", "subject"),  # *subj-blob subj-refwd
        ("[a][b] Re: subj", "subj"),
        ("[list] subject", "subject"),  # step 4: a leading blob
        ("[a] [b] subject", "subject"),  # steps 3 and 4 repeated
        ("[blob]", "[blob]"),  # step 4: not when nothing would be left
        ("[a] [b]", "[b]"),
        ("Re: [blob]", "[blob]"),
        ("[a [b] c] subj", "[a [b] c] subj"),  # no nested blobs: BLOBCHAR has no "["
        ("[fwd: hello]", "hello"),  # step 6
        ("[Fwd: Re: hello (fwd)]", "hello"),  # step 6, then from step 2 again
        ("Re: [fwd: [x] Re: y (fwd)]", "y"),
        ("[list] [fwd: z]", "z"),
        ("  x \t y  ", "x y"),  # step 1: white space collapsed, ends stripped
        ("Re:", ""),
        ("", ""),
        ("Reply: x", "Reply: x"),  # "re" must be followed by ":" or a blob
        ("Fwded: x", "Fwded: x"),
        ("Re: x (fwd) y", "x (fwd) y"),  # a trailer only at the end
    ],
)
def test_base_subject(subject: str, base: str) -> None:
    assert base_subject(subject) == base


def test_encoded_words_are_decoded_first() -> None:
    """Step 1: RFC 2047 encoded words become text before the rest (the caller's
    ``header_values`` does that; here the same decoder)."""
    value = decode_words(b"=?UTF-8?Q?Re=3A_?= [liste] =?ISO-8859-1?Q?Caf=E9?= (fwd)")
    assert base_subject(value) == "Café"
    assert base_subject(decode_words(b"=?utf-8?b?UmU6IMOcYmVy?=")) == "Über"


@given(st.text(max_size=200))
def test_never_raises_is_stripped_and_final(subject: str) -> None:
    base = base_subject(subject)
    assert base == base.strip(" ")
    assert base_subject(base) == base  # nothing more to remove
