"""Role policies: deny by default, column grants, masking — the "data moat".

The file format is a public contract (YAML, or the same structure in JSON or TOML)::

    default_role: viewer          # requests with no role or an unknown role get this role
    roles:
      viewer:
        tables:                   # table -> readable columns; "*" = all; unlisted: invisible
          employees: [id, name, department_id]
          departments: ["*"]
      analyst:
        inherits: [viewer]        # union of the parents' grants plus this role's own
        tables:
          employees: [salary]
        masked:                   # readable only as a masked value
          employees: [salary]
      admin:
        tables:
          "*": ["*"]

Semantics, all enforced by :mod:`sqlagent.safety`:

* A table that is not granted is invisible (``table_denied``); so is a column (``column_denied``).
* ``"*"`` as a table name grants every catalog table, but never the database's own catalog
  (``sqlite_master``, ``information_schema``, ``pg_catalog``, ``ALL_``/``DBA_``/``USER_`` views,
  ``mysql.*``): those must be listed by name.
* ``masked`` columns are readable only as a masked value; listing a column as masked also makes it
  readable that way. Masks are inherited and stay masked in every child role (to unmask a column,
  grant it in a role that does not inherit the mask).
* Names are matched under the database dialect's identifier rules, like the catalog's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from sqlagent.catalog import Catalog
from sqlagent.dialects import catalog_key, is_system_relation
from sqlagent.errors import PolicyError
from sqlagent.safety._names import close_names
from sqlagent.settings import read_config_file

__all__ = ["Access", "Policy", "PolicyNameIssue", "RoleSpec"]

_ROLE_KEYS = frozenset({"inherits", "tables", "masked"})
_TOP_KEYS = frozenset({"default_role", "roles"})


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """One role as written in the policy file."""

    name: str
    inherits: tuple[str, ...] = ()
    tables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    masked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _column_map(role: str, key: str, value: Any) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError(f"role {role!r}: {key!r} must map table names to lists of columns")
    out: dict[str, tuple[str, ...]] = {}
    for table, cols in value.items():
        if not isinstance(table, str) or not table:
            raise PolicyError(f"role {role!r}: {key!r} has a table name that is not a string")
        if isinstance(cols, str):
            cols = [cols]
        if not isinstance(cols, list) or not all(isinstance(c, str) and c for c in cols):
            raise PolicyError(
                f'role {role!r}: {key}.{table} must be a list of column names (or ["*"])'
            )
        out[table] = tuple(cols)
    return out


@dataclass(frozen=True, slots=True)
class Access:
    """What one role may read in one catalog, with names resolved to the catalog's spelling.

    ``visible`` maps table -> readable columns (masked ones included); ``masked`` holds
    ``(table, column)`` pairs readable only as a mask; ``system`` holds the database-catalog
    relations the policy names explicitly, by lower-case name, with their granted columns
    (``"*"`` for all).
    """

    role: str
    visible: Mapping[str, frozenset[str]]
    masked: frozenset[tuple[str, str]]
    system: Mapping[str, frozenset[str]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def catalog(self, catalog: Catalog) -> Catalog:
        """The role-filtered catalog: the only schema retrieval and prompts may ever see.

        Masked columns keep their names but lose any sample values.
        """
        return catalog.restricted(self.visible, masked=self.masked)


@dataclass(frozen=True, slots=True)
class PolicyNameIssue:
    """A table or column a policy names that the catalog does not have.

    Deny by default makes such a grant grant nothing (a typo hides what it meant to show, and a
    misspelt mask leaves nothing masked: the column it meant stays denied), so it is worth a
    warning. ``section`` is ``"tables"`` or ``"masked"``; ``column`` is ``None`` for a table;
    ``suggestions`` are the catalog's closest names.
    """

    role: str
    section: str
    table: str
    column: str | None = None
    suggestions: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        what = (
            f"column {self.column!r} of table {self.table!r}"
            if self.column is not None
            else f"table {self.table!r}"
        )
        text = f"role {self.role!r} ({self.section}) names {what}, which is not in the catalog"
        if self.suggestions:
            text += f"; did you mean {', '.join(map(repr, self.suggestions))}?"
        return text


@dataclass(frozen=True, slots=True)
class Policy:
    default_role: str
    roles: Mapping[str, RoleSpec]

    def __post_init__(self) -> None:
        if self.default_role not in self.roles:
            raise PolicyError(f"default_role {self.default_role!r} is not defined under roles")
        for spec in self.roles.values():
            for parent in spec.inherits:
                if parent not in self.roles:
                    raise PolicyError(f"role {spec.name!r} inherits unknown role {parent!r}")
        for name in self.roles:
            self._lineage(name, ())

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Any) -> Policy:
        if not isinstance(data, Mapping):
            raise PolicyError("a policy must be a mapping with 'default_role' and 'roles'")
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise PolicyError(f"unknown policy key(s): {', '.join(sorted(map(str, unknown)))}")
        default_role = data.get("default_role")
        if not isinstance(default_role, str) or not default_role:
            raise PolicyError("'default_role' must name a role (requests without a role get it)")
        roles_data = data.get("roles")
        if not isinstance(roles_data, Mapping) or not roles_data:
            raise PolicyError("'roles' must map role names to their grants")
        roles: dict[str, RoleSpec] = {}
        for name, body in roles_data.items():
            if not isinstance(name, str) or not name:
                raise PolicyError("role names must be non-empty strings")
            body = {} if body is None else body
            if not isinstance(body, Mapping):
                raise PolicyError(f"role {name!r} must be a mapping (tables, masked, inherits)")
            bad = set(body) - _ROLE_KEYS
            if bad:
                raise PolicyError(
                    f"role {name!r}: unknown key(s) {', '.join(sorted(map(str, bad)))}; "
                    "expected tables, masked, inherits"
                )
            inherits = body.get("inherits") or []
            if isinstance(inherits, str):
                inherits = [inherits]
            if not isinstance(inherits, list) or not all(isinstance(r, str) for r in inherits):
                raise PolicyError(f"role {name!r}: 'inherits' must be a list of role names")
            roles[name] = RoleSpec(
                name=name,
                inherits=tuple(inherits),
                tables=_column_map(name, "tables", body.get("tables")),
                masked=_column_map(name, "masked", body.get("masked")),
            )
        return cls(default_role=default_role, roles=roles)

    @classmethod
    def from_text(cls, text: str) -> Policy:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"the policy is not valid YAML/JSON: {exc}") from exc
        return cls.from_mapping(data)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Policy:
        """Load a policy file: YAML (``.yaml``/``.yml``), JSON (``.json``) or TOML (``.toml``),
        read like every configuration file (:func:`sqlagent.settings.read_config_file`)."""
        return cls.from_mapping(read_config_file(path, what="policy file", error=PolicyError))

    # -- resolution ----------------------------------------------------------------------------
    def resolve_role(self, role: str | None) -> str:
        """The role a request runs as: ``role`` when defined, otherwise the default role."""
        return role if role is not None and role in self.roles else self.default_role

    def _lineage(self, name: str, path: tuple[str, ...]) -> tuple[str, ...]:
        if name in path:
            raise PolicyError(f"roles inherit in a cycle: {' -> '.join((*path, name))}")
        out = [name]
        for parent in self.roles[name].inherits:
            for r in self._lineage(parent, (*path, name)):
                if r not in out:
                    out.append(r)
        return tuple(out)

    def check_names(self, catalog: Catalog, dialect: str) -> tuple[PolicyNameIssue, ...]:
        """Every table and column the policy's roles name that ``catalog`` lacks, in file order.

        Names are compared as :meth:`access` compares them (``dialect``'s identifier rules);
        ``"*"`` and the database's own catalog relations (granted by name, never reflected) are
        not checked. Under ``"*"`` a listed column must exist in at least one table.
        """
        by_key = {catalog_key(t.name, dialect): t for t in catalog}
        issues: list[PolicyNameIssue] = []
        for spec in self.roles.values():
            for section, tables in (("tables", spec.tables), ("masked", spec.masked)):
                for tname, cols in tables.items():
                    if tname == "*":
                        found = [c for t in catalog for c in t.column_names]
                    else:
                        table = by_key.get(catalog_key(tname, dialect))
                        if table is None:
                            db, _, name = tname.rpartition(".")
                            if not is_system_relation(name, db or None, dialect):
                                suggestions = close_names(tname, catalog.table_names)
                                issues.append(
                                    PolicyNameIssue(spec.name, section, tname, None, suggestions)
                                )
                            continue
                        found = list(table.column_names)
                    keys = {catalog_key(c, dialect) for c in found}
                    for col in cols:
                        if col != "*" and catalog_key(col, dialect) not in keys:
                            suggestions = close_names(col, found)
                            issues.append(
                                PolicyNameIssue(spec.name, section, tname, col, suggestions)
                            )
        return tuple(issues)

    def access(self, role: str | None, catalog: Catalog, dialect: str) -> Access:
        """Resolve ``role`` (with inheritance) against ``catalog`` under ``dialect``'s rules."""
        effective = self.resolve_role(role)
        by_key = {catalog_key(t.name, dialect): t for t in catalog}
        visible: dict[str, set[str]] = {}
        masked: set[tuple[str, str]] = set()
        system: dict[str, set[str]] = {}
        notes: list[str] = []

        def columns_of(table_name: str, cols: tuple[str, ...]) -> set[str]:
            table = catalog.table(table_name)
            assert table is not None
            if "*" in cols:
                return set(table.column_names)
            wanted = {catalog_key(c, dialect) for c in cols}
            return {c for c in table.column_names if catalog_key(c, dialect) in wanted}

        def grant(tables: Mapping[str, tuple[str, ...]], into_masked: bool) -> None:
            for tname, cols in tables.items():
                if tname == "*":
                    targets = [t.name for t in catalog]
                else:
                    table = by_key.get(catalog_key(tname, dialect))
                    if table is None:
                        db, _, name = tname.rpartition(".")
                        if is_system_relation(name, db or None, dialect):
                            system.setdefault(tname.lower(), set()).update(c.lower() for c in cols)
                        else:
                            notes.append(f"policy names table {tname!r}, not in the catalog")
                        continue
                    targets = [table.name]
                for target in targets:
                    cols_here = columns_of(target, cols)
                    visible.setdefault(target, set()).update(cols_here)
                    if into_masked:
                        masked.update((target, c) for c in cols_here)

        for name in self._lineage(effective, ()):
            spec = self.roles[name]
            grant(spec.tables, into_masked=False)
            grant(spec.masked, into_masked=True)
        return Access(
            role=effective,
            visible={t: frozenset(c) for t, c in visible.items()},
            masked=frozenset(masked),
            system={k: frozenset(v) for k, v in system.items()},
            notes=tuple(dict.fromkeys(notes)),
        )
