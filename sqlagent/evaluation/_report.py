"""Writing a run: ``results.json``, ``summary.md`` and a self-contained ``report.html``.

The HTML draws its charts as inline SVG, so it opens anywhere, offline, with no dependency.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlagent.errors import ConfigError
from sqlagent.evaluation._runner import EvalRun

__all__ = ["compare_runs", "load_results", "render_html", "render_markdown", "write_report"]

RESULTS = "results.json"


def write_report(run: EvalRun, out: str | Path) -> Path:
    """Write the three files into ``out`` (created if needed); returns the directory."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    data = run.to_dict()
    (d / RESULTS).write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    (d / "summary.md").write_text(render_markdown(data), encoding="utf-8")
    (d / "report.html").write_text(render_html(data), encoding="utf-8")
    return d


def load_results(path: str | Path) -> dict[str, Any]:
    """A run's results: an ``--out`` directory or its ``results.json``."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read eval results {p}: {exc}") from exc
    if not isinstance(data, dict) or "summary" not in data or "items" not in data:
        raise ConfigError(f"{p} is not an eval results file")
    return data


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _plain(value: Any) -> str:
    """A summary figure for people: ``n/a`` for a missing one (never ``None``), a mapping as
    ``key value, ...`` (``none`` when empty)."""
    if value is None:
        return "n/a"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items()) or "none"
    return str(value)


def _groups(summary: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    rows = [("overall", "all", summary["overall"])]
    for kind, key in (("difficulty", "by_difficulty"), ("tag", "by_tag"), ("db", "by_database")):
        rows += [(kind, name, g) for name, g in summary.get(key, {}).items()]
    return rows


def render_markdown(data: Mapping[str, Any]) -> str:
    s = data["summary"]
    lines = [
        "# sqlagent eval",
        "",
        f"{s['overall']['count']} questions; headline comparison: `{s.get('compat', 'strict')}`.",
        "",
        "| group | name | n | exec (strict) | exec (spider) | exact set | valid |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for kind, name, g in _groups(s):
        lines.append(
            f"| {kind} | {name} | {g['count']} | {_pct(g.get('exec_match_strict'))} "
            f"| {_pct(g.get('exec_match_spider'))} | {_pct(g.get('exact_match'))} "
            f"| {_pct(g.get('valid'))} |"
        )
    lat = s.get("latency_ms") or {}
    lines += [
        "",
        f"- hallucination rate: {_pct(s.get('hallucination_rate'))}",
        f"- read-only rejections: {s.get('read_only_rejections', 0)}; "
        f"policy rejections: {s.get('policy_rejections', 0)}",
        f"- latency p50/p95 (ms): {_plain(lat.get('p50'))} / {_plain(lat.get('p95'))}",
        f"- tokens: {_plain(s.get('tokens'))}",
        f"- retrieval recall of gold tables: {_pct(s.get('table_recall'))}",
        f"- outcome categories: {_plain(s.get('categories'))}",
        f"- gold sanity flags: {_plain(s.get('gold_flags'))}",
        "",
    ]
    return "\n".join(lines)


# -- SVG charts ------------------------------------------------------------------------------------
def _bars(
    title: str, data: Sequence[tuple[str, float]], *, unit: str = "", scale: float | None = None
) -> str:
    """A horizontal bar chart as an inline ``<svg>``."""
    width, label_w, bar_h, gap = 560, 170, 18, 6
    top = max((v for _, v in data), default=0.0)
    scale = scale or top or 1.0
    height = 30 + len(data) * (bar_h + gap)
    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="0" y="16" font-weight="bold">{html.escape(title)}</text>',
    ]
    for n, (label, value) in enumerate(data):
        y = 28 + n * (bar_h + gap)
        w = (width - label_w - 80) * (value / scale if scale else 0)
        shown = f"{100 * value:.1f}%" if unit == "%" else f"{value:g}{unit}"
        parts += [
            f'<text x="0" y="{y + 13}">{html.escape(label)}</text>',
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#4c78a8"/>',
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{shown}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(data: Mapping[str, Any]) -> str:
    s = data["summary"]
    diff = [(k, g["exec_match"] or 0.0) for k, g in s.get("by_difficulty", {}).items()]
    diff.insert(0, ("overall", s["overall"]["exec_match"] or 0.0))
    cats = [(k, float(v)) for k, v in s.get("categories", {}).items()]
    lat = sorted(i["latency_ms"] for i in data["items"] if i.get("latency_ms") is not None)
    charts = [_bars("Execution accuracy by difficulty", diff, unit="%", scale=1.0)]
    charts.append(_bars("Outcome categories (items)", cats))
    if lat:
        q = [("p50", 50), ("p90", 90), ("p95", 95), ("max", 100)]
        pts = [(name, lat[max(0, -(-p * len(lat) // 100) - 1)]) for name, p in q]
        charts.append(_bars("Latency (ms)", [(n, round(v, 1)) for n, v in pts], unit=" ms"))
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(n))}</td><td>{g['count']}</td>"
        f"<td>{_pct(g.get('exec_match_strict'))}</td><td>{_pct(g.get('exec_match_spider'))}</td>"
        f"<td>{_pct(g.get('exact_match'))}</td><td>{_pct(g.get('valid'))}</td></tr>"
        for k, n, g in _groups(s)
    )
    wrong = "".join(
        f"<tr><td>{i['index']}</td><td>{html.escape(i['category'])}</td>"
        f"<td>{_question_cell(i)}</td>"
        f"<td><code>{html.escape(i['predicted'] or '')}</code></td>"
        f"<td><code>{html.escape(i['gold'])}</code></td>"
        f"<td>{html.escape(', '.join(i['hallucinated']))}</td></tr>"
        for i in data["items"]
        if i["category"] != "correct"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sqlagent eval</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;vertical-align:top}}svg{{display:block;margin:1em 0}}
svg text{{font-size:12px}}</style></head><body>
<h1>sqlagent eval</h1>
<p>{s["overall"]["count"]} questions,
headline comparison <b>{html.escape(str(s.get("compat")))}</b>,
hallucination rate {_pct(s.get("hallucination_rate"))}.</p>
{"".join(charts)}
<h2>Accuracy</h2><table><tr><th>group</th><th>name</th><th>n</th><th>exec (strict)</th>
<th>exec (spider)</th><th>exact set</th><th>valid</th></tr>{rows}</table>
<h2>Items not correct</h2><table><tr><th>#</th><th>category</th><th>question</th>
<th>predicted</th><th>gold</th><th>hallucinated</th></tr>{wrong}</table>
</body></html>
"""


def _question_cell(item: Mapping[str, Any]) -> str:
    """The question, after the earlier questions of its conversation when it is a follow-up."""
    earlier = "".join(
        f"<small>after: {html.escape(str(turn.get('question', '')))}</small><br>"
        for turn in item.get("history") or ()
    )
    return earlier + html.escape(item["question"])


def compare_runs(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Group metrics side by side and the items whose execution match changed."""
    ga = {(k, n): g for k, n, g in _groups(a["summary"])}
    gb = {(k, n): g for k, n, g in _groups(b["summary"])}
    keys = list(ga) + [k for k in gb if k not in ga]
    groups = [
        {
            "group": k,
            "name": n,
            "a": ga.get((k, n), {}).get("exec_match"),
            "b": gb.get((k, n), {}).get("exec_match"),
        }
        for k, n in keys
    ]
    ia = {i["index"]: i for i in a["items"]}
    changed = [
        {"index": idx, "question": i["question"], "a": ia[idx]["exec_match"], "b": i["exec_match"]}
        for idx, i in ((i["index"], i) for i in b["items"])
        if idx in ia and ia[idx]["exec_match"] != i["exec_match"]
    ]
    return {"groups": groups, "changed": changed}
