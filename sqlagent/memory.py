"""Few-shot memory: question/SQL examples that users add and retrieval brings into prompts.

Examples live in a JSONL file (one ``{"question", "sql"}`` object per line) so they can be
reviewed, diffed and versioned like code. The agent validates an example's SQL (one read-only
statement, every name grounded in the catalog) before it is stored: a wrong example would teach
the model a wrong query on every similar question.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from sqlagent.errors import ConfigError
from sqlagent.types import Example

__all__ = ["ExampleStore", "read_examples"]


def read_examples(path: str | os.PathLike[str]) -> list[Example]:
    """Read a JSONL examples file; a malformed line is a :class:`ConfigError` naming it."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise ConfigError(f"examples file not found: {p}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read examples file {p}: {exc}") from exc
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}:{number}: not a JSON object: {exc}") from exc
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) and data[k].strip() for k in ("question", "sql")
        ):
            raise ConfigError(f'{p}:{number}: expected {{"question": "...", "sql": "..."}}')
        examples.append(Example(data["question"].strip(), data["sql"].strip()))
    return examples


class ExampleStore:
    """Examples in memory, optionally persisted to a JSONL file (appended to, never rewritten).

    Adding the same question twice replaces its SQL in memory and appends the new line; on
    reading, the last line for a question wins. Thread-safe.
    """

    def __init__(
        self, examples: Iterable[Example] = (), *, path: str | os.PathLike[str] | None = None
    ) -> None:
        self.path = None if path is None else Path(path)
        self._lock = threading.Lock()
        self._examples: dict[str, Example] = {}
        loaded = read_examples(self.path) if self.path is not None and self.path.exists() else []
        for example in [*loaded, *examples]:
            self._examples[_key(example.question)] = example

    @property
    def examples(self) -> tuple[Example, ...]:
        with self._lock:
            return tuple(self._examples.values())

    def __len__(self) -> int:
        return len(self._examples)

    def add(self, example: Example) -> None:
        if not example.question.strip() or not example.sql.strip():
            raise ConfigError("an example needs a non-empty question and SQL")
        example = Example(example.question.strip(), example.sql.strip())
        with self._lock:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(example.to_dict(), ensure_ascii=False) + "\n")
            self._examples[_key(example.question)] = example


def _key(question: str) -> str:
    return " ".join(question.casefold().split())
