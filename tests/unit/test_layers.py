"""DESIGN.md §2: a lower layer never imports a higher one, and siblings stay apart.

Walks every module's imports with ``ast`` (no import side effects) and checks
them against the rank of each layer. Layers of equal rank (store, directory,
queue, mailauth) may not import each other: what they share belongs lower.
"""

from __future__ import annotations

import ast
from pathlib import Path

import postoffice

RANK = {
    "core": 0,
    "config": 1,
    "protocol": 2,
    "mime": 3,
    "store": 4,
    "directory": 4,
    "queue": 4,
    "mailauth": 4,
    "net": 4,
    "delivery": 5,
    "server": 6,
    "cli": 7,
}
PACKAGE = Path(postoffice.__file__).parent


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "postoffice" or len(parts) < 2:
        return None
    return parts[1]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_every_layer_is_known() -> None:
    layers = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert layers <= set(RANK), f"unranked layer(s): {layers - set(RANK)}"


def test_no_layer_imports_upwards_or_sideways() -> None:
    violations = []
    checked = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if len(relative.parts) < 2:
            continue  # the package's own __init__/__main__ sit above every layer
        own = relative.parts[0]
        checked += 1
        for module in imports_of(path):
            other = layer_of(module)
            if other is None or other == own:
                continue
            if other not in RANK or RANK[other] >= RANK[own]:
                violations.append(f"{relative}: imports {module}")
    assert checked > 10
    assert violations == []
