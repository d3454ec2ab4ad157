"""The hand-made corpus: ENVELOPE, BODYSTRUCTURE and BODY of every message
against expectations written from the RFCs (``corpus_expected.py``), plus
properties every corpus tree must have (serialisation, sections, numbering)."""

from __future__ import annotations

from pathlib import Path

import pytest

from postoffice.mime.bodystructure import body_structure
from postoffice.mime.envelope import envelope
from postoffice.mime.sections import section_bytes, section_range
from postoffice.mime.structure import (
    Part,
    decode_structure,
    encode_structure,
    find_part,
    iter_parts,
    parse_structure,
)
from tests.mime.corpus_expected import EXPECTED
from tests.mime.corpus_helpers import without_extensions

CORPUS = Path(__file__).parent / "corpus"
MESSAGES = sorted(path.stem for path in CORPUS.glob("*.eml"))


def load(name: str) -> bytes:
    return (CORPUS / f"{name}.eml").read_bytes()


def test_corpus_is_complete() -> None:
    assert len(MESSAGES) >= 50
    assert set(MESSAGES) == set(EXPECTED)


@pytest.mark.parametrize("name", MESSAGES)
def test_envelope(name: str) -> None:
    data = load(name)
    assert envelope(data, parse_structure(data)) == EXPECTED[name][0]


@pytest.mark.parametrize("name", MESSAGES)
def test_bodystructure(name: str) -> None:
    data = load(name)
    assert body_structure(data, parse_structure(data), extensible=True) == EXPECTED[name][1]


@pytest.mark.parametrize("name", MESSAGES)
def test_body_has_no_extension_data(name: str) -> None:
    data = load(name)
    expected = without_extensions(EXPECTED[name][1])
    assert body_structure(data, parse_structure(data), extensible=False) == expected


@pytest.mark.parametrize("name", MESSAGES)
def test_serialisation_round_trip(name: str) -> None:
    root = parse_structure(load(name))
    blob = encode_structure(root)
    assert blob[0] == 1
    assert decode_structure(blob) == root


def numbered(root: Part) -> list[tuple[tuple[int, ...], Part]]:
    """Every (section number, part) pair, derived from the tree by RFC 3501 §6.4.5."""
    out: list[tuple[tuple[int, ...], Part]] = []

    def walk_message(message: Part, prefix: tuple[int, ...]) -> None:
        if message.children:
            for index, child in enumerate(message.children, 1):
                walk_part(child, (*prefix, index))
        else:
            walk_part(message, (*prefix, 1))

    def walk_part(part: Part, path: tuple[int, ...]) -> None:
        out.append((path, part))
        if part.children and part is not root:
            for index, child in enumerate(part.children, 1):
                walk_part(child, (*path, index))
        elif part.message is not None:
            walk_message(part.message, path)

    walk_message(root, ())
    return out


@pytest.mark.parametrize("name", MESSAGES)
def test_every_numbered_part_is_found_and_sliced(name: str) -> None:
    data = load(name)
    root = parse_structure(data)
    pairs = numbered(root)
    assert pairs, "every message has at least a part 1 (RFC 3501 §6.4.5)"
    for path, part in pairs:
        assert find_part(root, path) is part
        assert section_bytes(data, root, path) == data[part.body_start : part.end]
        assert section_bytes(data, root, path, "MIME") == data[part.start : part.body_start]
        assert section_range(root, path) == (part.body_start, part.end)
    top = len(root.children) if root.children else 1
    assert find_part(root, (top + 1,)) is None
    assert find_part(root, (0,)) is None


@pytest.mark.parametrize("name", MESSAGES)
def test_whole_message_sections(name: str) -> None:
    data = load(name)
    root = parse_structure(data)
    header = section_bytes(data, root, (), "HEADER")
    body = section_bytes(data, root, (), "TEXT")
    assert header is not None
    assert body is not None
    assert header + body == data == section_bytes(data, root, ())


@pytest.mark.parametrize("name", MESSAGES)
def test_tree_offsets_are_ordered(name: str) -> None:
    data = load(name)
    for part in iter_parts(parse_structure(data)):
        assert 0 <= part.start <= part.body_start <= part.end <= len(data)
        floor = part.body_start
        for child in part.children:
            assert floor <= child.start
            floor = child.end
        assert floor <= part.end
