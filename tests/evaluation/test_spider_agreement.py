"""compat="spider" agrees item for item with the official Spider evaluator on Spider dev.

The official verdicts (taoyds/test-suite-sql-eval exec_eval.eval_exec_match, default flags) are
stored in ../shared/data/spider-dev/official-verdicts/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sqlagent.evaluation._execmatch import ExecItem, exec_match_many
from tests.conftest import SPIDER

pytestmark = [
    pytest.mark.spider,
    pytest.mark.skipif(not (SPIDER / "dev.json").exists(), reason="Spider dev data absent"),
]
VERDICTS = SPIDER / "official-verdicts"


def _items(predictions: list[str]) -> list[ExecItem]:
    dev = json.loads((SPIDER / "dev.json").read_text())
    assert len(dev) == len(predictions) == 1034

    def db(db_id: str) -> str:
        return str(Path(SPIDER / "database" / db_id / f"{db_id}.sqlite"))

    return [
        ExecItem(i, db(entry["db_id"]), entry["query"], pred)
        for i, (entry, pred) in enumerate(zip(dev, predictions, strict=True))
    ]


@pytest.mark.slow
def test_gold_against_itself_all_match() -> None:
    dev = json.loads((SPIDER / "dev.json").read_text())
    verdicts = exec_match_many(_items([e["query"] for e in dev]), compat="spider")
    assert [v.index for v in verdicts if not v.match] == []


@pytest.mark.skipif(not (VERDICTS / "perturbed_seed1.txt").exists(), reason="no verdicts")
@pytest.mark.slow
def test_perturbed_predictions_agree_with_official() -> None:
    predictions = (VERDICTS / "perturbed_seed1.txt").read_text().split("\n")[:1034]
    official = json.loads((VERDICTS / "perturbed_seed1.exec.json").read_text())
    verdicts = exec_match_many(_items(predictions), compat="spider")
    ours = [int(v.match) for v in verdicts]
    assert [i for i, (a, b) in enumerate(zip(ours, official, strict=True)) if a != b] == []
    assert sum(ours) == sum(official)


@pytest.mark.slow
def test_strict_gold_against_itself_all_match() -> None:
    dev = json.loads((SPIDER / "dev.json").read_text())
    verdicts = exec_match_many(_items([e["query"] for e in dev]), compat="strict")
    assert [v.index for v in verdicts if not v.match] == []
