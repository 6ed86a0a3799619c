"""Installed package versions against the pins sqlagent was tested with.

The pins come from the installed distribution's metadata (``importlib.metadata.requires``), the
same text pip resolved from ``pyproject.toml``: no project file is read at run time. Versions are
compared on their release numbers only (``2.13.0+cpu`` is ``2.13.0``; a pre-release counts as
its release), which is all sqlagent's pins need; ``packaging`` is not a dependency.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Requirement", "installed_version", "requirements", "satisfies"]

_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<spec>[^;]*?)\s*"
    r"(?:;\s*(?P<marker>.*))?$"
)
_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")
_CLAUSE = re.compile(r"^\s*(===|==|!=|~=|>=|<=|>|<)\s*(\S+)\s*$")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement line: ``name``, its version ``spec`` (``>=2.0,<2.2``; may be empty) and
    the ``extra`` it belongs to (``None`` for the core dependencies)."""

    name: str
    spec: str
    extra: str | None


def requirements(distribution: str = "sqlagent") -> tuple[Requirement, ...]:
    """The requirements of an installed distribution, without self-references
    (``sqlagent[embed]; extra == "retrieval"``). Empty when it is not installed."""
    try:
        lines = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return ()
    found = []
    for line in lines:
        match = _REQUIREMENT.match(line)
        if match is None:
            continue
        name = match["name"]
        if _canonical(name) == _canonical(distribution):
            continue
        extra = _EXTRA.search(match["marker"] or "")
        found.append(Requirement(name, match["spec"].strip(), extra[1] if extra else None))
    return tuple(found)


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` meets every clause of ``spec`` (``">=2.0,<2.2"``, ``"==30.30.0"``,
    ``"~=1.4"``, ``"==2.*"``), comparing release numbers."""
    have = _release(version)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        match = _CLAUSE.match(clause)
        if match is None:
            return False
        op, want = match[1], match[2]
        if op == "===":
            ok = version == want
        elif want.endswith(".*") and op in ("==", "!="):
            prefix = _release(want[:-2])
            ok = (have[: len(prefix)] == prefix) == (op == "==")
        elif op == "~=":
            floor = _release(want)
            ok = _cmp(have, floor) >= 0 and have[: len(floor) - 1] == floor[:-1]
        else:
            ok = _OPS[op](_cmp(have, _release(want)))
        if not ok:
            return False
    return True


_OPS: dict[str, Callable[[int], bool]] = {
    "==": lambda c: c == 0,
    "!=": lambda c: c != 0,
    ">=": lambda c: c >= 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    "<": lambda c: c < 0,
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _release(version: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``; ``"1.0rc1"`` -> ``(1, 0)``; an epoch is ignored."""
    text = version.split("+", 1)[0].split("!", 1)[-1]
    parts = []
    for piece in text.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits[0]))
        if len(digits[0]) != len(piece):
            break
    return tuple(parts) or (0,)


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    width = max(len(a), len(b))
    left, right = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
    return (left > right) - (left < right)
