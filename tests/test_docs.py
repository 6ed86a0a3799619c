"""The documentation cannot fall behind the code.

- Every local link in README.md, CONTRIBUTING.md and docs/*.md resolves, anchors included.
- docs/configuration.md has one row per key of every configuration file, and no other: the keys
  are read from the models themselves (agent, safety and retrieval settings, the policy format,
  the training and serve configs).
- docs/cli.md documents every command and every option of ``sqlagent``.
- docs/python-api.md names every export of every public module.
- docs/architecture.md lists the layers exactly as the import-linter contract does.
- README.md stays short and links every page of docs/.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
import tomllib
import types
import typing
from collections.abc import Iterator
from pathlib import Path

import click
import pydantic
import pytest

import sqlagent
from sqlagent.config import AgentConfig
from sqlagent.safety import Policy, RoleSpec
from tests.conftest import ROOT

DOCS = ROOT / "docs"
#: The Markdown files whose links must resolve.
LINKED_FILES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *DOCS.glob("*.md")])
README_MAX_LINES = 200

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^()\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code, where link syntax is not a link."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (duplicates get ``-1``, ``-2`` ...)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for match in _HEADING.finditer(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _local_links(path: Path) -> Iterator[str]:
    for target in _LINK.findall(_prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        yield target


@pytest.mark.parametrize("path", LINKED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_local_links_resolve(path: Path) -> None:
    broken = []
    for target in _local_links(path):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading with that anchor in {resolved.name}")
    assert not broken, f"{path.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_the_link_checker_sees_links_and_skips_code(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title: `the` one\n\n## Same\n\n## Same\n\n"
        "[a](other.md) [b](https://example.com) [c](#same-1) `[d](inline.md)`\n\n"
        "```\n[e](fenced.md)\n```\n"
    )
    assert list(_local_links(page)) == ["other.md", "#same-1"]
    assert _anchors(page) == {"title-the-one", "same", "same-1"}


# -- configuration keys ------------------------------------------------------------------------


def _nested_model(annotation: object) -> tuple[type[pydantic.BaseModel] | None, bool]:
    """The configuration model inside ``annotation`` (``M``, ``M | None``, ``tuple[M, ...]``),
    and whether it is a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
            return arg, origin is tuple
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            model, many = _nested_model(arg)
            if model is not None:
                return model, many
    return None, False


def model_keys(model: type[pydantic.BaseModel], prefix: str = "") -> set[str]:
    """Every key a file may hold for ``model``, dotted (``retrieval.k_tables``); the keys of a
    list of sections are ``name[].key`` (``data[].kind``)."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        key = prefix + name
        keys.add(key)
        nested, many = _nested_model(field.annotation)
        if nested is not None:
            keys |= model_keys(nested, key + ("[]." if many else "."))
    return keys


def policy_keys() -> set[str]:
    """The policy file's keys: the top level, then each role's (``roles.<role>.tables``)."""
    top = {f.name for f in dataclasses.fields(Policy)}
    role = {f.name for f in dataclasses.fields(RoleSpec)} - {"name"}  # the mapping's key
    return top | {f"roles.<role>.{key}" for key in role}


def _sections(text: str, *, code: bool = False) -> dict[str, str]:
    """Heading text -> the text up to the next ``## `` heading; fenced code blocks are left out
    unless ``code`` (a synopsis in a code block documents options too)."""
    found: dict[str, str] = {}
    parts = re.split(r"^## (.+)$", text if code else _FENCE.sub("", text), flags=re.M)
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        found[heading.strip()] = body
    return found


def _table_keys(section: str) -> set[str]:
    """The first-column keys of the section's tables: rows like ``| `key` | ...``."""
    return set(re.findall(r"^\|\s*`([^`]+)`\s*\|", section, flags=re.M))


def _config_files() -> dict[str, set[str]]:
    """A heading prefix of docs/configuration.md -> the keys its tables must list."""
    from sqlagent.serve import ServeSettings
    from sqlagent.training import TrainConfig

    return {
        "Agent config": model_keys(AgentConfig),
        "Policy file": policy_keys(),
        "Training config": model_keys(TrainConfig),
        "Serve config": model_keys(ServeSettings),
    }


@pytest.mark.parametrize("heading", list(_config_files()))
def test_configuration_lists_every_key(heading: str) -> None:
    expected = _config_files()[heading]
    sections = _sections((DOCS / "configuration.md").read_text(encoding="utf-8"))
    matching = [body for title, body in sections.items() if title.startswith(heading)]
    assert len(matching) == 1, f"docs/configuration.md: one '## {heading} ...' section expected"
    documented = _table_keys(matching[0])
    missing, stale = sorted(expected - documented), sorted(documented - expected)
    assert not missing, f"{heading}: keys with no row: {missing}"
    assert not stale, f"{heading}: rows for no key: {stale}"


def test_model_keys_walks_sections_lists_and_optional_sections() -> None:
    class Inner(pydantic.BaseModel):
        a: int = 1

    class Outer(pydantic.BaseModel):
        one: Inner = Inner()
        maybe: Inner | None = None
        many: tuple[Inner, ...] = ()
        plain: str = ""

    assert model_keys(Outer) == {
        "one", "one.a", "maybe", "maybe.a", "many", "many[].a", "plain",
    }  # fmt: skip
    assert "retrieval.k_tables" in model_keys(AgentConfig)
    assert policy_keys() == {
        "default_role", "roles", "roles.<role>.inherits", "roles.<role>.tables",
        "roles.<role>.masked",
    }  # fmt: skip


# -- the command line --------------------------------------------------------------------------


def _commands() -> Iterator[tuple[str, click.Command]]:
    from sqlagent.cli import main

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                yield from walk(sub, f"{path} {name}")

    yield from walk(main, "sqlagent")


def _flags(command: click.Command) -> list[str]:
    """The long option names of ``command`` (``--eval`` and ``--no-eval`` both), not --help."""
    flags = []
    for param in command.params:
        if isinstance(param, click.Option):
            flags += [f for f in [*param.opts, *param.secondary_opts] if f.startswith("--")]
    return [f for f in flags if f != "--help"]


@pytest.mark.parametrize(("path", "command"), list(_commands()), ids=lambda x: str(x))
def test_cli_reference_documents_every_option(path: str, command: click.Command) -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    if path == "sqlagent":  # the group itself: --version, mentioned in the introduction
        assert all(flag in text for flag in _flags(command))
        return
    if isinstance(command, click.Group) and not _flags(command):
        return  # a group of subcommands (audit, demo ...): each subcommand has its section
    sections = [
        body
        for title, body in _sections(text, code=True).items()
        if re.search(rf"`{re.escape(path)}`", title)
    ]
    assert sections, f"docs/cli.md: no '## `{path}`' section"
    section = "\n".join(sections)
    missing = [f for f in _flags(command) if not re.search(rf"(?<![\w-]){f}(?![\w-])", section)]
    assert not missing, f"docs/cli.md, `{path}`: options not documented: {missing}"


# -- the Python API ----------------------------------------------------------------------------


def public_modules() -> list[str]:
    """``sqlagent`` and its public modules and subpackages (not the CLI, which has its own
    page), plus ``sqlagent.llm.local``."""
    names = {
        f"sqlagent.{m.name}"
        for m in pkgutil.iter_modules(sqlagent.__path__)
        if not m.name.startswith("_") and m.name != "cli"
    }
    return ["sqlagent", *sorted(names | {"sqlagent.llm.local"})]


@pytest.mark.parametrize("name", public_modules())
def test_python_api_names_every_export(name: str) -> None:
    module = importlib.import_module(name)
    sections = _sections((DOCS / "python-api.md").read_text(encoding="utf-8"))
    section = sections.get(f"`{name}`")
    assert section is not None, f"docs/python-api.md: no '## `{name}`' section"
    # `name`, or `name(...)` / `name.attr` written out in the same backticks
    missing = [n for n in module.__all__ if not re.search(rf"`{re.escape(n)}[`(.\[]", section)]
    assert not missing, f"docs/python-api.md, `{name}`: exports not listed: {missing}"


# -- architecture and the README ---------------------------------------------------------------


def test_architecture_lists_the_layers_of_the_contract() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = pyproject["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Layer rules", 1)[1]
    block = re.search(r"```\n(.+?)\n```", section, re.S)
    assert block, "docs/architecture.md: no code block under '## Layer rules'"
    assert block.group(1).splitlines() == layers


def test_readme_stays_short_and_links_every_doc() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES, "README.md: move detail into docs/"
    linked = {target.partition("#")[0] for target in _local_links(ROOT / "README.md")}
    orphans = [p.name for p in sorted(DOCS.glob("*.md")) if f"docs/{p.name}" not in linked]
    assert not orphans, f"README.md does not link: {orphans}"
