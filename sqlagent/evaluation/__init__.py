"""The code behind ``sqlagent eval``: suites, predictions, scoring, reports.

    from sqlagent.evaluation import load_suite, load_predictions, run_eval, write_report
    items = load_suite("spider", "spider-dev", limit=20)
    run = run_eval(items, predictions=load_predictions("pred.sql", len(items)))
    write_report(run, "out")  # results.json, summary.md, report.html

Execution match (:func:`exec_match_many`) runs gold and predicted SQL in worker processes;
the other metrics (exact-set match, validity, hallucinations, Spider hardness) are computed here.
"""

from sqlagent.evaluation._execmatch import ExecItem, ExecVerdict, exec_match, exec_match_many
from sqlagent.evaluation._metrics import (
    exact_set_match,
    gold_tables,
    hallucinated_identifiers,
    percentile,
    spider_hardness,
    summarize,
)
from sqlagent.evaluation._report import (
    compare_runs,
    load_results,
    render_html,
    render_markdown,
    write_report,
)
from sqlagent.evaluation._runner import (
    EvalRun,
    Prediction,
    Predictor,
    agent_predictor,
    function_predictor,
    run_eval,
)
from sqlagent.evaluation._suite import EvalItem, SuiteKind, load_predictions, load_suite

__all__ = [
    "EvalItem",
    "EvalRun",
    "ExecItem",
    "ExecVerdict",
    "Prediction",
    "Predictor",
    "SuiteKind",
    "agent_predictor",
    "compare_runs",
    "exact_set_match",
    "exec_match",
    "exec_match_many",
    "function_predictor",
    "gold_tables",
    "hallucinated_identifiers",
    "load_predictions",
    "load_results",
    "load_suite",
    "percentile",
    "render_html",
    "render_markdown",
    "run_eval",
    "spider_hardness",
    "summarize",
    "write_report",
]
