from __future__ import annotations

from pathlib import Path

import pytest
from audit_helpers import write_chain


@pytest.fixture
def chain10(tmp_path: Path) -> Path:
    """A valid 10-line chain (seq 0..9) written by JsonlAuditSink."""
    path = tmp_path / "audit.jsonl"
    write_chain(path, 10)
    return path
