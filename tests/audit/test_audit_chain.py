"""verify_chain: a clean chain passes, and every kind of tampering is found at the right line."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import make_event, read_lines, records, write_chain, write_lines

from sqlagent.audit import GENESIS_HASH, AuditEvent, ChainProblem, JsonlAuditSink, verify_chain
from sqlagent.audit._chain import canonical_json


def found(path: Path, **kwargs: Any) -> list[tuple[int, str]]:
    return [(p.line, p.kind) for p in verify_chain(path, **kwargs).problems]


def rehash(record: dict[str, Any]) -> str:
    """What an attacker who knows the scheme would do after an edit."""
    body = {k: v for k, v in record.items() if k != "hash"}
    body["hash"] = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    return canonical_json(body) + "\n"


def test_valid_chain(chain10: Path) -> None:
    report = verify_chain(chain10)
    assert report.ok
    assert report.lines == 10
    assert report.problems == ()
    assert report.head == records(chain10)[-1]["hash"]
    assert [r["seq"] for r in records(chain10)] == list(range(10))


def test_line_format(chain10: Path) -> None:
    first, second = records(chain10)[:2]
    assert first["prev"] == GENESIS_HASH
    assert second["prev"] == first["hash"]
    body = {k: v for k, v in first.items() if k != "hash"}
    assert first["hash"] == hashlib.sha256(canonical_json(body).encode()).hexdigest()
    assert first["question"] == "question 0 — naïve ünïcode"
    assert "ü" in read_lines(chain10)[0]  # ensure_ascii=False


def test_empty_file_is_a_valid_chain(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.touch()
    report = verify_chain(path)
    assert (report.ok, report.lines, report.head) == (True, 0, GENESIS_HASH)


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        verify_chain(tmp_path / "nope.jsonl")


def test_edited_field(chain10: Path) -> None:
    lines = read_lines(chain10)
    lines[4] = lines[4].replace('"verdict":"allowed"', '"verdict":"rejected"')
    lines[6] = lines[6].replace("SELECT 6", "SELECT secret FROM users")
    write_lines(chain10, lines)
    report = verify_chain(chain10)
    assert not report.ok
    assert [(p.line, p.kind) for p in report.problems] == [(5, "edited"), (7, "edited")]
    assert "hash does not match" in report.problems[0].message


def test_edited_seq_does_not_cascade(chain10: Path) -> None:
    lines = read_lines(chain10)
    lines[3] = lines[3].replace('"seq":3,', '"seq":30,')
    write_lines(chain10, lines)
    assert found(chain10) == [(4, "edited")]


def test_edited_last_line(chain10: Path) -> None:
    lines = read_lines(chain10)
    lines[9] = lines[9].replace("SELECT 9", "SELECT 10")
    write_lines(chain10, lines)
    assert found(chain10) == [(10, "edited")]


def test_edited_and_rehashed_breaks_the_next_link(chain10: Path) -> None:
    recs = records(chain10)
    recs[3]["sql_in"] = "SELECT 'harmless'"
    lines = read_lines(chain10)
    lines[3] = rehash(recs[3])
    write_lines(chain10, lines)
    report = verify_chain(chain10)
    assert [(p.line, p.kind) for p in report.problems] == [(5, "broken_link")]
    assert "line 4 (seq 3)" in report.problems[0].message


def test_dropped_middle_line(chain10: Path) -> None:
    lines = read_lines(chain10)
    del lines[5]
    write_lines(chain10, lines)
    report = verify_chain(chain10)
    assert report.problems == (
        ChainProblem(6, "dropped", "1 line is missing before this line (seq 5)"),
    )


def test_dropped_several_lines(chain10: Path) -> None:
    lines = read_lines(chain10)
    del lines[3:6]
    write_lines(chain10, lines)
    report = verify_chain(chain10)
    assert [(p.line, p.kind) for p in report.problems] == [(4, "dropped")]
    assert "3 lines are missing" in report.problems[0].message
    assert "seqs 3..5" in report.problems[0].message


@pytest.mark.parametrize("count", [1, 2])
def test_dropped_first_lines(chain10: Path, count: int) -> None:
    write_lines(chain10, read_lines(chain10)[count:])
    assert found(chain10) == [(1, "dropped")]


def test_dropped_first_line_and_edited_next(chain10: Path) -> None:
    lines = read_lines(chain10)[1:]
    lines[0] = lines[0].replace("SELECT 1", "SELECT 2")
    write_lines(chain10, lines)
    assert found(chain10) == [(1, "dropped"), (1, "edited")]


def test_renumbered_and_rehashed_line(chain10: Path) -> None:
    recs = records(chain10)
    lines = read_lines(chain10)
    lines[9] = rehash(dict(recs[9], seq=12))
    write_lines(chain10, lines)
    assert found(chain10) == [(10, "broken_link")]


def test_inserted_copy_after_original(chain10: Path) -> None:
    lines = read_lines(chain10)
    lines.insert(7, lines[2])  # a copy of line 3 becomes line 8
    write_lines(chain10, lines)
    report = verify_chain(chain10)
    assert report.problems == (ChainProblem(8, "inserted", "a copy of line 3 (seq 2)"),)


def test_inserted_copy_before_original(chain10: Path) -> None:
    lines = read_lines(chain10)
    lines.insert(2, lines[7])  # a copy of seq 7 becomes line 3; the original is now line 9
    write_lines(chain10, lines)
    assert found(chain10) == [(3, "inserted")]


def test_inserted_adjacent_duplicate(chain10: Path) -> None:
    lines = read_lines(chain10)
    lines.insert(5, lines[4])
    write_lines(chain10, lines)
    assert found(chain10) == [(6, "inserted")]


def test_inserted_rehashed_line_with_a_taken_seq(chain10: Path) -> None:
    recs = records(chain10)
    forged = dict(recs[4], sql_in="SELECT 'forged'")  # seq 4, prev of seq 4, valid hash
    lines = read_lines(chain10)
    lines.insert(4, rehash(forged))  # before the genuine seq 4
    write_lines(chain10, lines)
    assert found(chain10) == [(5, "inserted")]


def test_inserted_line_with_unknown_seq(chain10: Path) -> None:
    recs = records(chain10)
    forged = dict(recs[4], seq=500, hash="f" * 64)
    lines = read_lines(chain10)
    lines.insert(6, canonical_json(forged) + "\n")
    write_lines(chain10, lines)
    assert found(chain10) == [(7, "inserted")]


def test_swapped_lines(chain10: Path) -> None:
    lines = read_lines(chain10)
    lines[4], lines[5] = lines[5], lines[4]
    write_lines(chain10, lines)
    report = verify_chain(chain10)
    assert [(p.line, p.kind) for p in report.problems] == [(6, "reordered")]
    assert "seq 4" in report.problems[0].message


def test_distant_lines_swapped(chain10: Path) -> None:
    lines = read_lines(chain10)
    lines[2], lines[6] = lines[6], lines[2]
    write_lines(chain10, lines)
    assert found(chain10) == [(3, "reordered"), (7, "reordered")]


def test_reversed_file(chain10: Path) -> None:
    write_lines(chain10, read_lines(chain10)[::-1])
    report = verify_chain(chain10)
    assert {p.kind for p in report.problems} == {"reordered"}
    assert len(report.problems) == 9
    assert report.problems[-1].message == "seq 0 is out of order: it belongs at the start"


def test_line_moved_to_the_end(chain10: Path) -> None:
    lines = read_lines(chain10)
    lines.append(lines.pop(2))
    write_lines(chain10, lines)
    report = verify_chain(chain10)
    assert report.problems == (
        ChainProblem(10, "reordered", "seq 2 is out of order: it belongs after line 2 (seq 1)"),
    )


def test_line_moved_to_the_front(chain10: Path) -> None:
    lines = read_lines(chain10)
    lines.insert(0, lines.pop(8))
    write_lines(chain10, lines)
    assert found(chain10) == [(1, "reordered")]


def test_forged_line_appended_with_a_taken_seq(chain10: Path) -> None:
    recs = records(chain10)
    forged = dict(recs[9], sql_in="DROP TABLE orders")
    with chain10.open("a", encoding="utf-8") as handle:
        handle.write(canonical_json(forged) + "\n")
    assert found(chain10) == [(11, "inserted")]


def test_forged_line_appended_with_a_bogus_hash(chain10: Path) -> None:
    last = records(chain10)[-1]
    forged = dict(last, seq=10, prev=last["hash"], sql_in="SELECT 1", hash="a" * 64)
    with chain10.open("a", encoding="utf-8") as handle:
        handle.write(canonical_json(forged) + "\n")
    # For the last line an edit and a forged append are indistinguishable (documented).
    assert found(chain10) == [(11, "edited")]


def test_forged_line_appended_with_a_valid_hash_but_wrong_prev(chain10: Path) -> None:
    last = records(chain10)[-1]
    forged = dict(last, seq=10, prev=GENESIS_HASH, sql_in="SELECT 1")
    with chain10.open("a", encoding="utf-8") as handle:
        handle.write(rehash(forged))
    assert found(chain10) == [(11, "broken_link")]


def test_malformed_lines(chain10: Path) -> None:
    lines = read_lines(chain10)
    lines[3] = "{not json\n"
    lines.insert(6, "\n")
    lines.insert(8, '["a", "list"]\n')
    lines.insert(9, '{"seq": 1}\n')
    write_lines(chain10, lines)
    report = verify_chain(chain10)
    # The seq that line 4 held is not reported again as dropped.
    assert [(p.line, p.kind) for p in report.problems] == [
        (4, "malformed"),
        (7, "malformed"),
        (9, "malformed"),
        (10, "malformed"),
    ]
    assert report.problems[1].message == "empty line"


def test_invalid_utf8_is_malformed(chain10: Path) -> None:
    with chain10.open("ab") as handle:
        handle.write(b"\xff\xfe\n")
    assert found(chain10) == [(11, "malformed")]


def test_truncation_needs_an_external_head(chain10: Path) -> None:
    head = verify_chain(chain10).head
    write_lines(chain10, read_lines(chain10)[:-2])
    # Known limit: what is left is a valid, shorter chain.
    assert verify_chain(chain10).ok
    report = verify_chain(chain10, expected_head=head)
    assert not report.ok
    assert [(p.line, p.kind) for p in report.problems] == [(9, "truncated")]
    assert head in report.problems[0].message


def test_expected_head_survives_growth(chain10: Path) -> None:
    head = verify_chain(chain10).head
    with JsonlAuditSink(chain10) as sink:
        sink.emit(make_event(99))
    report = verify_chain(chain10, expected_head=head)
    assert report.ok
    assert report.lines == 11
    assert report.head != head


def test_expected_head_of_an_empty_log(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.touch()
    head = verify_chain(path).head
    assert verify_chain(path, expected_head=head).ok
    write_chain(path, 3)
    assert verify_chain(path, expected_head=head).ok


def test_whole_file_removed_after_anchor(chain10: Path) -> None:
    head = verify_chain(chain10).head
    chain10.write_text("")
    assert found(chain10, expected_head=head) == [(1, "truncated")]


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    write_chain(path, 30)
    lines = read_lines(path)
    lines[2] = lines[2].replace("SELECT 2", "SELECT 3")  # edit line 3
    del lines[10]  # drop seq 10 -> seq 11 is now line 11
    lines[20], lines[21] = lines[21], lines[20]  # swap -> line 22 out of order
    lines.insert(25, lines[0])  # copy of line 1 at line 26
    write_lines(path, lines)
    assert found(path) == [(3, "edited"), (11, "dropped"), (22, "reordered"), (26, "inserted")]


def test_unterminated_last_line_is_still_verified(chain10: Path) -> None:
    chain10.write_text(chain10.read_text(encoding="utf-8").rstrip("\n"), encoding="utf-8")
    assert verify_chain(chain10).ok


def test_non_json_values_are_hashed_as_written(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    with JsonlAuditSink(path) as sink:
        sink.emit(AuditEvent(name="ask", verdict="allowed", extra={"day": date(2024, 1, 2)}))
        sink.emit(AuditEvent(name="ask", verdict="allowed", latency_ms=1.5, row_count=3))
    assert verify_chain(path).ok
    assert json.loads(read_lines(path)[0])["extra"] == {"day": "2024-01-02"}
