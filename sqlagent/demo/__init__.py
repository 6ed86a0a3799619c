"""A small company/HR demo database and its role policy, built by sqlagent's own code.

The README, the examples and the tests use it to show role policies and masking on sensitive
columns (salaries, national IDs, payroll) without needing a real database::

    from sqlagent.demo import write_demo

    paths = write_demo("demo")  # demo/hr.sqlite, policy.yaml, sqlagent.yaml, examples, glossary
    paths.url                   # 'sqlite:////abs/path/demo/hr.sqlite'
"""

from __future__ import annotations

from sqlagent.demo._build import (
    CONFIG_FILENAME,
    DATABASE_FILENAME,
    DEMO_QUESTIONS,
    POLICY_FILENAME,
    DemoPaths,
    DemoQuestion,
    build_demo_database,
    demo_examples_text,
    demo_policy_text,
    write_demo,
)

__all__ = [
    "CONFIG_FILENAME",
    "DATABASE_FILENAME",
    "DEMO_QUESTIONS",
    "DemoPaths",
    "DemoQuestion",
    "POLICY_FILENAME",
    "build_demo_database",
    "demo_examples_text",
    "demo_policy_text",
    "write_demo",
]
