"""The audit hash chain: how records are sealed, and how a chain is verified.

One definition serves both stores: a JSONL file holds one sealed record per line, a SQL table
(:class:`~sqlagent.audit.SQLAuditSink`) one per row, as the same text. Each record is one JSON
object: the event's fields plus ``seq`` (0, 1, 2, ...), ``prev`` (the ``hash`` of the record
before, :data:`GENESIS_HASH` for the first) and ``hash``, the SHA-256 of the canonical JSON of the
record without its ``hash`` key. Changing, dropping, inserting or moving any record therefore
shows up in the log itself, with one exception that no self-contained chain can avoid: removing
records *at the end* leaves a shorter, valid chain. Keep :attr:`ChainReport.head` somewhere else
and pass it back as ``expected_head`` to close that gap. The hash is not keyed, so the chain
proves integrity against accidents and careless edits, not against someone who rewrites every
hash after the edit; an external anchor catches that too.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any, Final, Literal, TypeGuard

__all__ = [
    "GENESIS_HASH",
    "LINES",
    "ROWS",
    "ChainProblem",
    "ChainReport",
    "ProblemKind",
    "RecordUnit",
    "canonical_json",
    "seal",
    "seal_record",
    "verify_chain",
    "verify_records",
]

GENESIS_HASH: Final = "0" * 64
"""``prev`` of the first line, and the head of an empty chain."""

ProblemKind = Literal[
    "malformed", "edited", "inserted", "dropped", "reordered", "broken_link", "truncated"
]


def canonical_json(obj: Any) -> str:
    """The one serialisation that is hashed: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def seal_record(fields: Mapping[str, Any], seq: int, prev: str) -> dict[str, Any]:
    """The sealed record that chains ``fields`` after a record hashed ``prev``, ``hash`` included.

    Values JSON cannot hold are written with ``str()``, and lone surrogates (which UTF-8 cannot
    encode; JSON input may carry them) become U+FFFD. The record is normalised through a JSON
    round trip *before* hashing, so a verifier that only sees the stored text recomputes the
    same hash. Its stored text is ``canonical_json(record)``.
    """
    record = dict(fields)
    record["seq"] = seq
    record["prev"] = prev
    text = json.dumps(record, default=str, ensure_ascii=False)
    body: dict[str, Any] = json.loads(_LONE_SURROGATE.sub("\ufffd", text))
    body["hash"] = _digest(body)
    return body


def seal(fields: Mapping[str, Any], seq: int, prev: str) -> str:
    """Return the line (with its newline) that chains ``fields`` after a line hashed ``prev``.

    The line is the canonical JSON of :func:`seal_record`'s record.
    """
    return canonical_json(seal_record(fields, seq, prev)) + "\n"


def _is_hash(value: object) -> TypeGuard[str]:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


@dataclass(frozen=True, slots=True)
class RecordUnit:
    """How a verifier names the records it reads, in its messages.

    A file's records are its lines, numbered from 1 (``line 3 (seq 2)``); a table's are its
    rows, named by their ``seq`` column (``row 2``; ``row 3 (seq 2)`` when the record inside
    claims another seq).
    """

    noun: str
    store: str
    label_is_seq: bool

    def name(self, label: int, seq: int) -> str:
        if self.label_is_seq and label == seq:
            return f"{self.noun} {label}"
        return f"{self.noun} {label} (seq {seq})"


LINES: Final = RecordUnit("line", "file", label_is_seq=False)
ROWS: Final = RecordUnit("row", "table", label_is_seq=True)


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """One finding, ``kind`` one of :data:`ProblemKind`.

    ``line`` names the record: its 1-based line number in a file; for a SQL chain
    (:func:`~sqlagent.audit.verify_sql_chain`) the row's ``seq`` column.
    """

    line: int
    kind: ProblemKind
    message: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of :func:`verify_chain` (or :func:`~sqlagent.audit.verify_sql_chain`).

    ``lines`` counts the records read (lines of a file, rows of a table). ``head`` is the
    ``hash`` of the last well-formed record (:data:`GENESIS_HASH` for an empty log): store it
    outside the log to detect later truncation.
    """

    ok: bool
    lines: int
    head: str
    problems: tuple[ChainProblem, ...] = ()


@dataclass(slots=True)
class _Line:
    line: int
    seq: int
    prev: str
    hash: str
    intact: bool  # the stored hash matches the content (and nothing outside contradicts it)
    note: str | None = None  # why a record with a valid hash is not intact


def _parse(number: int, raw: bytes, unit: RecordUnit) -> _Line | ChainProblem:
    def bad(why: str) -> ChainProblem:
        return ChainProblem(number, "malformed", why)

    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return bad(f"empty {unit.noun}" if not raw.strip() else f"not valid JSON ({exc})")
    if not isinstance(record, dict):
        return bad("not a JSON object")
    seq, prev, stored = record.get("seq"), record.get("prev"), record.pop("hash", None)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return bad("missing or invalid 'seq' (a non-negative integer)")
    if not _is_hash(prev) or not _is_hash(stored):
        return bad("missing or invalid 'prev'/'hash' (64 lowercase hex digits)")
    return _Line(number, seq, prev, stored, _digest(record) == stored)


def _longest_increasing(lines: list[_Line]) -> set[int]:
    """Indices of a longest run of strictly increasing ``seq`` in file order (O(n log n)).

    Ties go to keeping the earlier line, so of two swapped lines the later one is blamed.
    """
    # Walk backwards looking for decreasing seq, i.e. increasing seq read forwards.
    tails: list[int] = []  # -seq of the best tail for each length
    tail_index: list[int] = []
    parent: list[int] = [-1] * len(lines)
    for i in range(len(lines) - 1, -1, -1):
        key = -lines[i].seq
        pos = bisect.bisect_left(tails, key)
        parent[i] = tail_index[pos - 1] if pos else -1
        if pos == len(tails):
            tails.append(key)
            tail_index.append(i)
        else:
            tails[pos] = key
            tail_index[pos] = i
    keep: set[int] = set()
    i = tail_index[-1] if tail_index else -1
    while i != -1:
        keep.add(i)
        i = parent[i]
    return keep


def verify_chain(path: str | PathLike[str], *, expected_head: str | None = None) -> ChainReport:
    """Check every link of a JSONL audit chain and say which line is wrong, and how.

    Classification, using ``hash``, ``seq`` and ``prev`` together (line numbers are 1-based):

    - ``malformed``: not a JSON object with an integer ``seq`` and hex ``prev``/``hash``. A
      malformed line is left out of the chain; the seq it held is not reported again as dropped.
    - ``edited``: the stored hash does not match the content, but the line sits in its place in
      the chain (its successor's ``prev`` names its hash, or it fits after its predecessor). A
      changed ``seq`` is taken from the neighbours, so it does not cascade. For the *last* line
      an in-place edit and a forged appended line with a bad hash look the same; both are
      reported as edited.
    - ``inserted``: a line that is not part of the chain: a copy of another line (same seq;
      the copy that fits its place worst is blamed, then the later one), a second line claiming
      a seq with a different content, or a line outside the increasing order of seqs that does
      not link to its seq neighbours.
    - ``reordered``: a genuine line (intact hash, linked to the line with seq - 1 or seq + 1) that
      sits out of the increasing order of seqs; the fewest lines are blamed (a longest
      increasing run of seqs stays in place), so for two swapped lines the later one.
    - ``dropped``: seqs are missing; reported at the line that follows the gap, so removing the
      first line(s) reports line 1.
    - ``broken_link``: an intact line with the next seq whose ``prev`` does not name the stored
      hash of the line before, or a seq gap whose ``prev`` does link: a line was changed *and*
      re-hashed. Which of the two lines is at fault cannot be known; the later one is reported.
    - ``truncated``: ``expected_head`` (a ``head`` recorded earlier) is not the hash of any line
      in the chain: lines were removed from the end. It is reported at ``lines + 1``. A file
      that has grown since the head was recorded is fine: anchors stay valid as the log grows
      (and :data:`GENESIS_HASH`, the head of an empty log, is always satisfied).

    Without ``expected_head``, removing the last line(s) cannot be detected: what is left is a
    valid, shorter chain. An empty file is a valid chain of 0 lines. Raises :class:`OSError` if
    the file cannot be read.
    """
    with open(path, "rb") as handle:
        return verify_records(
            ((number, raw, None) for number, raw in enumerate(handle, start=1)),
            unit=LINES,
            expected_head=expected_head,
        )


@dataclass(frozen=True, slots=True)
class _Pinned:
    head: str | None
    where: str


def verify_records(
    records: Iterable[tuple[int, bytes, str | None]],
    *,
    unit: RecordUnit,
    expected_head: str | None = None,
    pinned_head: tuple[str | None, str] | None = None,
) -> ChainReport:
    """Verify sealed records given in store order as ``(label, text, note)``.

    ``label`` names the record in problems (increasing along the store), ``text`` is its
    stored JSON, ``note`` (or ``None``) says why a record whose hash matches must still count
    as edited (a SQL row's column that contradicts its record). ``pinned_head``, ``(hash,
    where)``, is a head kept beside the log that must name its *last* record (a SQL chain's
    head table): a head no record holds means records were removed from the end (``truncated``),
    records after it were added by something other than a chain writer (``inserted``), a
    missing head (``None``) beside records is reported as ``malformed``. See
    :func:`verify_chain` for the classification.
    """
    problems: list[ChainProblem] = []
    lines: list[_Line] = []
    malformed: set[int] = set()
    last_label = 0
    for label, raw, note in records:
        last_label = label
        parsed = _parse(label, raw, unit)
        if isinstance(parsed, ChainProblem):
            problems.append(parsed)
            malformed.add(label)
        else:
            if note is not None and parsed.intact:
                parsed.intact, parsed.note = False, note
            lines.append(parsed)
    end = last_label + 1

    _infer_edited_seqs(lines)
    chain = _dedupe(lines, problems, unit)
    chain = _order(chain, problems, unit)
    _links(chain, malformed, problems, unit)

    hashes = {entry.hash for entry in chain}
    if expected_head is not None and expected_head != GENESIS_HASH and expected_head not in hashes:
        problems.append(
            ChainProblem(
                end,
                "truncated",
                f"expected head {expected_head} is not in the {unit.store}: "
                f"{unit.noun}s were removed from the end (or the head belongs to another log)",
            )
        )
    if pinned_head is not None:
        problems.extend(_check_pinned(_Pinned(*pinned_head), chain, end, unit))
    problems.sort(key=lambda p: (p.line, p.kind))
    head = lines[-1].hash if lines else GENESIS_HASH
    return ChainReport(
        ok=not problems, lines=len(lines) + len(malformed), head=head, problems=tuple(problems)
    )


def _check_pinned(
    pinned: _Pinned, chain: list[_Line], end: int, unit: RecordUnit
) -> Iterator[ChainProblem]:
    if pinned.head is None:
        if chain:
            yield ChainProblem(
                end,
                "malformed",
                f"{pinned.where} has no head: the chain's own anchor was removed, so "
                f"{unit.noun}s removed from the end would go unseen",
            )
        return
    if pinned.head == GENESIS_HASH:
        at = -1
    else:
        found = [i for i, entry in enumerate(chain) if entry.hash == pinned.head]
        if not found:
            yield ChainProblem(
                end,
                "truncated",
                f"{pinned.where} names head {pinned.head}, which no {unit.noun} holds: "
                f"{unit.noun}s were removed from the end (or the head was changed)",
            )
            return
        at = found[-1]
    if at + 1 < len(chain):
        after = chain[at + 1]
        count = len(chain) - at - 1
        plural = unit.noun if count == 1 else f"{unit.noun}s"
        since = "is empty" if at < 0 else f"ends at {unit.name(chain[at].line, chain[at].seq)}"
        yield ChainProblem(
            after.line,
            "inserted",
            f"{count} {plural} from here on were not written by a chain writer: "
            f"{pinned.where} {since}",
        )


def _infer_edited_seqs(lines: list[_Line]) -> None:
    """A line whose hash fails cannot vouch for its own seq: take it from linked neighbours."""
    for i, entry in enumerate(lines):
        if entry.intact:
            continue
        before = lines[i - 1] if i else None
        after = lines[i + 1] if i + 1 < len(lines) else None
        if before is not None and entry.prev == before.hash:
            entry.seq = before.seq + 1
        elif before is None and entry.prev == GENESIS_HASH:
            entry.seq = 0
        elif after is not None and after.prev == entry.hash and after.seq > 0:
            entry.seq = after.seq - 1


def _dedupe(lines: list[_Line], problems: list[ChainProblem], unit: RecordUnit) -> list[_Line]:
    """Keep one line per seq, the one that fits its place best; the others were inserted."""
    by_seq: dict[int, list[int]] = {}
    for i, entry in enumerate(lines):
        by_seq.setdefault(entry.seq, []).append(i)

    hashes_by_seq: dict[int, set[str]] = {}
    prevs_by_seq: dict[int, set[str]] = {}
    for entry in lines:
        hashes_by_seq.setdefault(entry.seq, set()).add(entry.hash)
        prevs_by_seq.setdefault(entry.seq, set()).add(entry.prev)

    def fit(i: int) -> tuple[bool, int, int, int]:
        # Intact first; then linked to the seq neighbours; then linked to the file neighbours
        # (this separates identical copies); then the earlier line.
        entry = lines[i]
        before = hashes_by_seq.get(entry.seq - 1, {GENESIS_HASH} if entry.seq == 0 else set())
        seq_links = (entry.prev in before) + (entry.hash in prevs_by_seq.get(entry.seq + 1, ()))
        file_before = lines[i - 1].hash if i else GENESIS_HASH
        file_after = i + 1 < len(lines) and lines[i + 1].prev == entry.hash
        return (entry.intact, seq_links, (entry.prev == file_before) + file_after, -i)

    dropped: set[int] = set()
    for indices in by_seq.values():
        if len(indices) < 2:
            continue
        keeper = max(indices, key=fit)
        kept = lines[keeper]
        for i in indices:
            if i == keeper:
                continue
            entry = lines[i]
            dropped.add(i)
            if entry.hash == kept.hash:
                why = f"a copy of {unit.name(kept.line, kept.seq)}"
            else:
                holder = unit.name(kept.line, kept.seq)
                why = f"a second {unit.noun} with seq {entry.seq} ({holder} holds it)"
                if not entry.intact:
                    why += ", and its hash does not match its content"
            problems.append(ChainProblem(entry.line, "inserted", why))
    return [entry for i, entry in enumerate(lines) if i not in dropped]


def _order(lines: list[_Line], problems: list[ChainProblem], unit: RecordUnit) -> list[_Line]:
    """Blame lines outside a longest increasing run of seqs; return the chain sorted by seq."""
    keep = _longest_increasing(lines)
    by_seq = {entry.seq: entry for entry in lines}
    chain: list[_Line] = []
    for i, entry in enumerate(lines):
        if i in keep:
            chain.append(entry)
            continue
        before = by_seq.get(entry.seq - 1)
        after = by_seq.get(entry.seq + 1)
        linked = (
            (before is not None and entry.prev == before.hash)
            or (entry.seq == 0 and entry.prev == GENESIS_HASH)
            or (after is not None and after.prev == entry.hash)
        )
        if entry.intact and linked:
            if entry.seq == 0:
                where = "at the start"
            elif before is not None:
                where = f"after {unit.name(before.line, before.seq)}"
            else:
                assert after is not None  # linked, and not by seq - 1
                where = f"before {unit.name(after.line, after.seq)}"
            problems.append(
                ChainProblem(
                    entry.line, "reordered", f"seq {entry.seq} is out of order: it belongs {where}"
                )
            )
            chain.append(entry)
        else:
            why = (
                f"seq {entry.seq} does not fit here and the {unit.noun} does not link to its "
                "neighbours"
            )
            if not entry.intact:
                why += "; its hash does not match its content"
            problems.append(ChainProblem(entry.line, "inserted", why))
    chain.sort(key=lambda entry: entry.seq)
    return chain


def _links(
    chain: list[_Line], malformed: set[int], problems: list[ChainProblem], unit: RecordUnit
) -> None:
    """Walk the chain in seq order: report edits, gaps and links that do not hold."""
    previous: _Line | None = None
    for entry in chain:
        expected_seq = previous.seq + 1 if previous is not None else 0
        expected_prev = previous.hash if previous is not None else GENESIS_HASH
        if not entry.intact:
            problems.append(
                ChainProblem(
                    entry.line,
                    "edited",
                    entry.note
                    or f"hash does not match the content: the {unit.noun} was changed after it "
                    f"was written (or, for the last {unit.noun}, forged without a valid hash)",
                )
            )
        origin = unit.name(previous.line, previous.seq) if previous else "the start"
        if entry.seq > expected_seq:
            missing = entry.seq - expected_seq
            if entry.intact and entry.prev == expected_prev:
                problems.append(
                    ChainProblem(
                        entry.line,
                        "broken_link",
                        f"seq jumps from {origin} to {entry.seq} but prev links to it: "
                        f"the seq was changed and the {unit.noun} re-hashed",
                    )
                )
            elif not _explained_by_malformed(entry, previous, missing, malformed):
                span = (
                    f"seq {expected_seq}"
                    if missing == 1
                    else f"seqs {expected_seq}..{entry.seq - 1}"
                )
                plural = f"{unit.noun} is" if missing == 1 else f"{unit.noun}s are"
                problems.append(
                    ChainProblem(
                        entry.line,
                        "dropped",
                        f"{missing} {plural} missing before this {unit.noun} ({span})",
                    )
                )
        elif entry.intact and entry.prev != expected_prev:
            problems.append(
                ChainProblem(
                    entry.line,
                    "broken_link",
                    f"prev does not match the hash of {origin}: one of the two {unit.noun}s "
                    "was changed and re-hashed",
                )
            )
        previous = entry


def _explained_by_malformed(
    entry: _Line, previous: _Line | None, missing: int, malformed: set[int]
) -> bool:
    start = previous.line if previous is not None and previous.line < entry.line else 0
    between = sum(1 for number in malformed if start < number < entry.line)
    return between >= missing
