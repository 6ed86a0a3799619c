"""Hypothesis strategies: statements over the noninterference schema, built to attack the moat.

:func:`statements` draws one statement *template* for an engine (``{db}``/``{schema}`` are
rendered per side of the pair, see :mod:`.harness`). The grammar mixes what an attacker mixes:
CTEs named like catalog tables (read back through qualified names or not), joins with system
views, table functions, ``DUAL``, ``VALUES`` and ``LATERAL``, ``NATURAL``/``USING`` joins,
subqueries in every clause (select list, FROM, WHERE, HAVING, ORDER BY, JOIN ON), correlated
subqueries, window functions, set operations, aggregates, ``CASE`` — and protected columns
(masked or denied) placed anywhere, qualified, unqualified, or unqualified next to a source
that does not have them. Half of the statements are *attack moves* instead (:class:`_Attack`):
a core that reads a protected value if the guard misjudges it (CTE shadowing through qualified
names, hidden columns next to ungrounded sources, ungranted system columns, masked values in
one of many clauses, NATURAL/USING, PostgreSQL whole-row references, ``reg*`` casts and
LATERAL), wrapped in a random context (a derived table, a CTE, a union, EXISTS, ORDER BY/LIMIT).

Determinism (see :mod:`.harness`): every statement's outcome is fixed by SQL semantics on the
data, so a difference between the two databases can only come from protected values:

* ``LIMIT`` appears only after ``ORDER BY`` of every output position (a total order of the
  rows: rows that tie on every output are identical), never inside subqueries;
* scalar subqueries are aggregates (one row) or end in ``ORDER BY`` of all outputs ``LIMIT 1``;
* aggregate queries group by every plain output, and the only aggregates are order-insensitive
  (``count``, ``min``, ``max``, ``sum`` of integers); window functions are tie-insensitive
  (``rank``, ``dense_rank``, ``count``, ``min``, ``max``, with the default RANGE frame);
* no volatile function (``random()``, ``now()``) is generated, and system views are filtered to
  a few rows (cross joins stay far below the executor's row cap and time limit).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from tests.safety.noninterference.schema import PROTECTED, TABLES

__all__ = ["Generated", "statements"]

# column -> kind, for every catalog table
_KINDS: dict[str, dict[str, str]] = {
    t: {c.name: c.kind for c in cols} for t, cols in TABLES.items()
}
_NUMERIC = frozenset({"int", "real"})

#: Ungrounded sources per engine: (FROM item, alias, columns with kinds, filter that keeps it
#: small). System views are granted (some columns) to the ``sys`` role only.
_SYSTEM: dict[str, list[tuple[str, str, dict[str, str], str]]] = {
    "sqlite": [
        ("sqlite_master", "m", {"name": "text", "type": "text", "sql": "text"},
         "m.name = 'departments'"),
    ],
    "postgres": [
        ("information_schema.tables", "it", {"table_name": "text", "table_type": "text",
         "table_schema": "text"}, "it.table_name = 'departments'"),
        ("information_schema.columns", "ic", {"table_name": "text", "column_name": "text",
         "column_default": "text"}, "ic.table_name = 'secrets'"),
        ("pg_catalog.pg_class", "pc", {"relname": "text", "relkind": "text",
         "reloptions": "text"}, "pc.relname = 'secrets'"),
    ],
    "mysql": [
        ("information_schema.tables", "it", {"table_name": "text", "table_type": "text",
         "table_schema": "text"}, "it.table_name = 'departments'"),
        ("information_schema.columns", "ic", {"table_name": "text", "column_name": "text",
         "column_default": "text"}, "ic.table_name = 'secrets'"),
    ],
}  # fmt: skip
_FUNCTIONS: dict[str, list[tuple[str, str, dict[str, str]]]] = {
    "sqlite": [("json_each('[1, 2]')", "j", {"key": "int", "value": "int"})],
    "postgres": [
        ("generate_series(1, 2)", "g", {"g": "int"}),
        ("unnest(ARRAY[1, 2])", "u", {"u": "int"}),
        ("(VALUES (1), (2))", "v", {"x": "int"}),
    ],
    "mysql": [
        ("JSON_TABLE('[1, 2]', '$[*]' COLUMNS (x INT PATH '$'))", "j", {"x": "int"}),
        ("(SELECT 1 AS x UNION ALL SELECT 2)", "v", {"x": "int"}),
    ],
}
_QUALIFIERS = {"sqlite": ["main", "{schema}"], "postgres": ["public"] * 4 + ["{db}.public"],
               "mysql": ["{db}"]}  # fmt: skip
_CAST_TEXT = {"sqlite": "TEXT", "postgres": "TEXT", "mysql": "CHAR"}
# Joins along the schema's foreign keys: (table, column, table, column).
_LINKS = (
    ("employees", "department_id", "departments", "id"),
    ("employees", "manager_id", "employees", "id"),
    ("projects", "department_id", "departments", "id"),
    ("assignments", "employee_id", "employees", "id"),
    ("assignments", "project_id", "projects", "id"),
    ("secrets", "employee_id", "employees", "id"),
)
_HIDDEN_NAMES = sorted({c for _, c in PROTECTED})
_OUTPUT_NAMES = sorted({*_HIDDEN_NAMES, "id", "name", "department_id", "rating", "table_name"})
_LITERALS = {
    "int": ["0", "1", "3", "24", "37919", "60000", "-1"],
    "real": ["0.5", "500", "20000.5"],
    "text": ["'Ana'", "'a%'", "'9%'", "'departments'", "'x'", "''"],
    "date": ["'2018-01-01'", "'2021-06-30'"],
    "json": ["'[1]'"],
}


@dataclass(frozen=True, slots=True)
class Source:
    """A FROM item: how it is written, its alias, and the columns the generator may name."""

    item: str
    alias: str
    columns: dict[str, str]
    kind: str  # table | cte | derived | system | function


@dataclass(frozen=True, slots=True)
class Generated:
    """A drawn statement template and the role it is judged for."""

    template: str
    role: str


class _Gen:
    """One draw's state: the engine, the CTEs in scope and fresh aliases."""

    def __init__(self, draw: st.DrawFn, engine: str, role: str) -> None:
        self.draw = draw
        self.engine = engine
        self.ctes: dict[str, dict[str, str]] = {}
        self.counter = 0
        # Aim most statements at what the role may read, so that many are allowed and run;
        # the rest reach for what it may not (system views, the secrets table).
        self.system_weight = 15 if role == "sys" else 2
        self.secrets_weight = 10 if role == "masker" else 3

    # -- small helpers ---------------------------------------------------------------------------
    def pick(self, options: list[str] | tuple[str, ...]) -> str:
        return self.draw(st.sampled_from(list(options)))

    def chance(self, p: float) -> bool:
        return self.draw(st.integers(0, 999)) < p * 1000

    def alias(self, base: str) -> str:
        self.counter += 1
        return f"{base}{self.counter}"

    def output_name(self, i: int, used: dict[str, str]) -> str:
        """``c<i>``, or often the name of a (protected) catalog column: a CTE or derived table
        whose outputs are called ``ssn`` or ``salary`` is the bait of shadowing attacks."""
        if self.chance(0.35):
            name = self.pick(_OUTPUT_NAMES)
            if name not in used:
                return name
        return f"c{i}" if f"c{i}" not in used else f"c{i}_{len(used)}"

    def literal(self, kind: str) -> str:
        return self.pick(_LITERALS.get(kind, _LITERALS["int"]))

    # -- sources ---------------------------------------------------------------------------------
    def table_source(self, depth: int) -> Source:
        roll = self.draw(st.integers(0, 99))
        table = (
            "secrets"
            if roll < self.secrets_weight
            else self.pick(
                ["employees"] * 5 + ["departments"] * 2 + ["projects", "assignments", "assignments"]
            )
        )
        alias = self.alias(table[0])
        name = table
        if self.chance(0.15):
            name = f"{self.pick(_QUALIFIERS[self.engine])}.{table}"
        return Source(f"{name} {alias}", alias, dict(_KINDS[table]), "table")

    def source(self, depth: int, allow_special: bool = True) -> Source:
        roll = self.draw(st.integers(0, 99))
        special, functions = self.system_weight, self.system_weight + 6
        if self.ctes and self.chance(0.3):
            name = self.pick(sorted(self.ctes))
            alias = self.alias("q")
            if name in TABLES and self.chance(0.5):
                # the trap: a qualified name with the CTE's name is the real table
                qualified = f"{self.pick(_QUALIFIERS[self.engine])}.{name}"
                return Source(f"{qualified} {alias}", alias, dict(self.ctes[name]), "cte")
            return Source(f"{name} {alias}", alias, dict(self.ctes[name]), "cte")
        if allow_special and roll < special:
            item, alias, cols, where = self.pick_system()
            return Source(f"{item} {alias}", alias, cols, "system:" + where)
        if allow_special and roll < functions:
            item, alias, cols = self.draw(st.sampled_from(_FUNCTIONS[self.engine]))
            alias = self.alias(alias)
            if self.engine == "postgres" and not item.startswith("(VALUES"):
                return Source(f"{item} AS {alias}", alias, {alias: "int"}, "function")
            if item.startswith("(VALUES"):
                return Source(f"{item} AS {alias}(x)", alias, cols, "function")
            return Source(f"{item} AS {alias}", alias, cols, "function")
        if depth < 2 and roll < functions + 10:
            sql, names = self.select(depth + 1, [], agg=self.chance(0.3))
            alias = self.alias("d")
            return Source(f"({sql}) {alias}", alias, names, "derived")
        return self.table_source(depth)

    def pick_system(self) -> tuple[str, str, dict[str, str], str]:
        item, alias, cols, where = self.draw(st.sampled_from(_SYSTEM[self.engine]))
        fresh = self.alias(alias)
        return item, fresh, dict(cols), where.replace(f"{alias}.", f"{fresh}.")

    # -- expressions -----------------------------------------------------------------------------
    def column(self, sources: list[Source], outer: list[Source]) -> tuple[str, str]:
        """A column reference and its kind: qualified, unqualified, outer, or a stray name."""
        roll = self.draw(st.integers(0, 99))
        special = any(s.kind.startswith(("system", "function")) for s in sources)
        if roll < (15 if special else 3):
            name = self.pick(_HIDDEN_NAMES)  # unqualified: whatever the database binds it to
            kind = next((_KINDS[t][name] for t in _KINDS if name in _KINDS[t]), "text")
            return name, kind
        pool = sources + (outer if roll < 30 else [])
        src = self.draw(st.sampled_from(pool))
        if not src.columns:
            return "1", "int"
        # protected columns of catalog tables are drawn more often than their share
        names = sorted(src.columns)
        hot = [n for n in names if src.kind in ("table", "cte") and n in _HIDDEN_NAMES]
        name = self.pick(hot) if hot and self.chance(0.12) else self.pick(names)
        kind = src.columns[name]
        if roll < 20 and src in sources:
            return name, kind  # unqualified
        return f"{src.alias}.{name}", kind

    def expr(self, sources: list[Source], outer: list[Source], depth: int) -> tuple[str, str]:
        roll = self.draw(st.integers(0, 99))
        col, kind = self.column(sources, outer)
        if roll < 55:
            return col, kind
        if roll < 63:
            if kind in _NUMERIC:
                return f"{col} + {self.pick(['1', '0'])}", kind
            return f"upper({col})", "text"
        if roll < 66:
            return f"coalesce({col}, {self.literal(kind)})", kind
        if roll < 72:
            return f"CAST({col} AS {_CAST_TEXT[self.engine]})", "text"
        if roll < 80:
            cond = self.condition(sources, outer, depth)
            return f"CASE WHEN {cond} THEN 1 ELSE 0 END", "int"
        if roll < 88 and depth < 2:
            return self.scalar_subquery(sources + outer, depth + 1)
        if self.engine == "postgres" and roll < 95:
            src = self.draw(st.sampled_from(sources))
            if src.kind == "table":
                return self.pick([f"to_jsonb({src.alias})::text", f"{src.alias}::text"]), "text"
        return col, kind

    def scalar_subquery(self, outer: list[Source], depth: int) -> tuple[str, str]:
        inner = self.source(depth, allow_special=self.chance(0.3))
        col, kind = self.column([inner], outer)
        where = ""
        if outer and self.chance(0.6):
            o = self.draw(st.sampled_from(outer))
            ocol, _ = self.column([o], [])
            icol = self.pick(sorted(inner.columns)) if inner.columns else "1"
            where = f" WHERE {inner.alias}.{icol} = {ocol}" if inner.columns else ""
        if inner.kind.startswith("system:"):
            cond = inner.kind.removeprefix("system:")
            where = f"{where} AND {cond}" if where else f" WHERE {cond}"
        if self.chance(0.6):
            agg = self.pick(["max", "min", "count"])
            return (
                f"(SELECT {agg}({col}) FROM {inner.item}{where})",
                kind if agg != "count" else "int",
            )
        return f"(SELECT {col} FROM {inner.item}{where} ORDER BY 1 LIMIT 1)", kind

    def condition(self, sources: list[Source], outer: list[Source], depth: int) -> str:
        roll = self.draw(st.integers(0, 99))
        if roll < 8 and depth < 3:
            a = self.condition(sources, outer, depth + 1)
            b = self.condition(sources, outer, depth + 1)
            return f"({a} {self.pick(['AND', 'OR'])} {b})"
        if roll < 11 and depth < 3:
            return f"NOT ({self.condition(sources, outer, depth + 1)})"
        expr, kind = self.expr(sources, outer, depth + 1)
        if roll < 24:
            return f"{expr} IS {self.pick(['NULL', 'NOT NULL'])}"
        if roll < 34 and kind == "text":
            pattern = self.pick(["'%a%'", "'9%'", "'%-00-%'", "'u%'"])
            return f"{expr} LIKE {pattern}"
        if roll < 42:
            items = ", ".join(self.literal(kind) for _ in range(self.draw(st.integers(1, 3))))
            return f"{expr} IN ({items})"
        if roll < 48 and depth < 2:
            sub, _ = self.select(depth + 1, sources + outer, arity=1)
            return f"{expr} IN ({sub})"
        if roll < 56 and depth < 2:
            sub, _ = self.select(depth + 1, sources + outer, arity=1, correlate=True)
            return f"{self.pick(['EXISTS', 'NOT EXISTS'])} ({sub})"
        if roll < 66 and kind in _NUMERIC:
            return f"{expr} BETWEEN {self.literal(kind)} AND {self.literal(kind)}"
        op = self.pick(["=", "<>", "<", ">", ">="])
        return f"{expr} {op} {self.literal(kind)}"

    # -- FROM and joins --------------------------------------------------------------------------
    def from_clause(self, depth: int, outer: list[Source]) -> tuple[str, list[Source], list[str]]:
        first = self.source(depth)
        sources, filters = [first], []
        text = first.item
        if first.kind.startswith("system:"):
            filters.append(first.kind.removeprefix("system:"))
        if self.chance(0.45 if depth == 0 else 0.25):
            second = self.source(depth)
            if second.kind.startswith("system:"):
                filters.append(second.kind.removeprefix("system:"))
            roll = self.draw(st.integers(0, 99))
            if roll < 20:
                text += f", {second.item}"
            elif roll < 30:
                text += f" NATURAL JOIN {second.item}"
            elif roll < 40:
                common = sorted(set(first.columns) & set(second.columns))
                if common:
                    text += f" JOIN {second.item} USING ({self.pick(common)})"
                else:
                    text += f" CROSS JOIN {second.item}"
            elif roll < 48 and self.engine == "postgres":
                sub, names = self.select(depth + 1, [first], arity=1, correlate=True)
                lateral = self.alias("l")
                second = Source(f"LATERAL ({sub}) {lateral}", lateral, names, "derived")
                text += f", {second.item}"
            else:
                join = self.pick(["JOIN", "LEFT JOIN"])
                on = self.join_condition(first, second, outer, depth)
                text += f" {join} {second.item} ON {on}"
            sources.append(second)
        return text, sources, filters

    def join_condition(self, a: Source, b: Source, outer: list[Source], depth: int) -> str:
        for _ta, ca, _tb, cb in _LINKS:
            if ca in a.columns and cb in b.columns and self.chance(0.5):
                return f"{a.alias}.{ca} = {b.alias}.{cb}"
            if cb in a.columns and ca in b.columns and self.chance(0.5):
                return f"{a.alias}.{cb} = {b.alias}.{ca}"
        return self.condition([a, b], outer, depth + 1)

    # -- SELECT ----------------------------------------------------------------------------------
    def select(
        self,
        depth: int,
        outer: list[Source],
        *,
        arity: int | None = None,
        agg: bool = False,
        correlate: bool = False,
        order: bool = False,
    ) -> tuple[str, dict[str, str]]:
        """A SELECT with ``arity`` outputs (c0, c1 ...) and their kinds."""
        from_, sources, filters = self.from_clause(depth, outer)
        n = arity if arity is not None else self.draw(st.integers(1, 3))
        items: list[str] = []
        kinds: dict[str, str] = {}
        plain: list[str] = []
        for i in range(n):
            if agg and self.chance(0.6):
                col, kind = self.column(sources, outer if correlate else [])
                func = self.pick(["count", "min", "max", "count"] + ["sum"] * (kind == "int"))
                if self.chance(0.2):
                    text, kind = f"count(DISTINCT {col})", "int"
                elif self.chance(0.15):
                    text, kind = "count(*)", "int"
                else:
                    text = f"{func}({col})"
                    kind = "int" if func == "count" else kind
            elif not agg and depth < 2 and self.chance(0.1):
                col, kind = self.column(sources, [])
                part, ordby = self.column(sources, [])[0], self.column(sources, [])[0]
                func = self.pick(["rank()", "dense_rank()", "count(*)", f"max({col})"])
                text = f"{func} OVER (PARTITION BY {part} ORDER BY {ordby})"
                kind = kind if func.startswith("max") else "int"
            else:
                text, kind = self.expr(sources, outer if correlate else [], depth)
                plain.append(text)
            name = self.output_name(i, kinds)
            items.append(f"{text} AS {name}")
            kinds[name] = kind
        distinct = "DISTINCT " if self.chance(0.1) else ""
        sql = f"SELECT {distinct}{', '.join(items)} FROM {from_}"
        conds = list(filters)
        if self.chance(0.5):
            conds.append(self.condition(sources, outer if correlate else [], depth))
        if correlate and outer:
            o = self.draw(st.sampled_from(outer))
            ocol, _ = self.column([o], [])
            inner_col, _ = self.column(sources, [])
            conds.append(f"{inner_col} = {ocol}")
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        if agg:
            if plain:
                sql += " GROUP BY " + ", ".join(plain)
            if self.chance(0.3):
                col, _ = self.column(sources, [])
                sql += f" HAVING {self.pick(['count', 'max', 'min'])}({col}) IS NOT NULL"
        if order or (depth == 0 and self.chance(0.4)):
            sql += " ORDER BY " + ", ".join(str(i + 1) for i in range(n))
            if depth == 0 and self.chance(0.5):
                sql += f" LIMIT {self.draw(st.integers(1, 5))}"
        elif depth == 0 and not (agg or distinct) and self.chance(0.15):
            # ordered by any expression first (a masked one, say), then by every output
            key, _ = self.expr(sources, [], depth + 1)
            sql += f" ORDER BY {key}, " + ", ".join(str(i + 1) for i in range(n))
        return sql, kinds

    def with_clause(self) -> str:
        parts = []
        recursive = False
        for _ in range(self.draw(st.integers(1, 2))):
            roll = self.draw(st.integers(0, 99))
            name = (
                "employees"
                if roll < 15
                else "secrets"
                if roll < 20
                else ("departments" if roll < 50 else "w")
            )
            if name in self.ctes:
                continue
            if self.chance(0.15):
                parts.append(
                    f"{name}(c0) AS (SELECT 1 UNION ALL SELECT c0 + 1 FROM {name} WHERE c0 < 3)"
                )
                self.ctes[name] = {"c0": "int"}
                recursive = True
                continue
            body, kinds = self.select(1, [], agg=self.chance(0.2))
            parts.append(f"{name} AS ({body})")
            self.ctes[name] = kinds
        if not parts:
            return ""
        return ("WITH RECURSIVE " if recursive else "WITH ") + ", ".join(parts) + " "

    def statement(self) -> str:
        prefix = self.with_clause() if self.chance(0.25) else ""
        roll = self.draw(st.integers(0, 99))
        if roll < 12:
            n = self.draw(st.integers(1, 2))
            left, _ = self.select(1, [], arity=n)
            right, _ = self.select(1, [], arity=n)
            op = self.pick(["UNION", "UNION ALL", "INTERSECT", "EXCEPT"])
            tail = (
                " ORDER BY " + ", ".join(str(i + 1) for i in range(n)) if self.chance(0.4) else ""
            )
            return f"{prefix}{left} {op} {right}{tail}"
        sql, _ = self.select(0, [], agg=self.chance(0.25))
        return prefix + sql


# -- attack moves ----------------------------------------------------------------------------------
#: Protected columns of each table, with a literal that matches a row in variant ``a`` only.
_BAIT: dict[str, dict[str, str]] = {
    "employees": {"ssn": "'100-10-1000'", "salary": "37919", "email": "'1001'",
                  "bonus": "123.25", "notes": "'x'"},
    "secrets": {"token": "'tok-a-31'", "level": "2", "payload": "'x'"},
}  # fmt: skip
_MASKED = {"analyst": ("salary", "email"), "sys": ("salary", "email"),
           "masker": ("salary", "bonus", "email", "ssn", "notes")}  # fmt: skip
#: System relations: (FROM item, alias, a granted column, ungranted columns, a 1-row filter).
_SYSTEM_ATTACK: dict[str, list[tuple[str, str, str, tuple[str, ...], str]]] = {
    "sqlite": [("sqlite_master", "m", "name", ("sql", "tbl_name", "rootpage"),
                "m.name = 'secrets'")],
    "postgres": [
        ("pg_catalog.pg_class", "pc", "relname", ("reloptions", "relnatts", "oid"),
         "pc.relname = 'secrets'"),
        ("information_schema.columns", "ic", "column_name", ("column_default", "is_nullable"),
         "ic.table_name = 'secrets' AND ic.column_name = 'level'"),
        ("information_schema.tables", "it", "table_name", ("table_schema", "is_insertable_into"),
         "it.table_name = 'secrets'"),
    ],
    "mysql": [
        ("information_schema.columns", "ic", "column_name", ("column_default", "ordinal_position"),
         "ic.table_name = 'secrets' AND ic.column_name = 'level'"),
        ("information_schema.tables", "it", "table_name", ("table_schema", "engine"),
         "it.table_name = 'secrets'"),
    ],
}  # fmt: skip
#: One-row sources outside the catalog that any role may use (table functions, VALUES, DUAL).
_ONE_ROW: dict[str, list[str]] = {
    "sqlite": ["json_each('[1]') AS j", "(SELECT 1 AS x) AS v"],
    "postgres": ["generate_series(1, 1) AS g", "unnest(ARRAY[1]) AS u(x)", "(VALUES (1)) AS v(x)"],
    "mysql": ["DUAL", "(SELECT 1 AS x) AS v",
              "JSON_TABLE('[1]', '$[*]' COLUMNS (x INT PATH '$')) AS j"],
}  # fmt: skip


#: Shapes for an unqualified hidden column ``{h}`` next to a source ``{s}`` (filter ``{f}``)
#: outside the catalog.
_UNGROUNDED_SHAPES: tuple[tuple[str, int], ...] = (
    ("SELECT e.name, {h} FROM employees e, {s} WHERE {f}", 2),
    ("SELECT e.id FROM employees e, {s} WHERE {f} AND {use}", 1),
    ("SELECT e.id FROM employees e JOIN {s} ON {f} WHERE {use}", 1),
    ("SELECT e.id, (SELECT max({h}) FROM {s} WHERE {f}) AS v FROM employees e", 2),
    ("SELECT e.id FROM employees e WHERE EXISTS (SELECT 1 FROM {s} WHERE {f} AND {use})", 1),
)
#: Places for a masked value: (template, number of outputs). ``{ref}`` is ``e.<column>``,
#: ``{use}``/``{use_x}``/``{use_t}`` a condition on it (on ``x.<column>``, on ``t.v``).
_MASKED_PLACES: tuple[tuple[str, int], ...] = (
    ("SELECT e.id FROM employees e WHERE {use}", 1),
    ("SELECT d.id FROM departments d JOIN employees e ON e.department_id = d.id AND {use}", 1),
    ("SELECT count(*) AS n FROM employees e GROUP BY {ref}", 1),
    ("SELECT e.department_id FROM employees e GROUP BY e.department_id "
     "HAVING max({ref}) IS NULL", 1),
    ("SELECT e.id FROM employees e ORDER BY {ref}, e.id", 1),
    ("SELECT e.id, rank() OVER (ORDER BY {ref}) AS r FROM employees e", 2),
    ("SELECT e.id, count(*) OVER (PARTITION BY {ref}) AS c FROM employees e", 2),
    ("SELECT count(DISTINCT {ref}) AS n FROM employees e", 1),
    ("SELECT e.id, CASE WHEN {use} THEN 1 ELSE 0 END AS v FROM employees e", 2),
    ("SELECT e.id FROM employees e WHERE e.id IN (SELECT x.id FROM employees x WHERE {use_x})", 1),
    ("SELECT e.id, {h} FROM employees e INTERSECT SELECT x.id, {bait} FROM employees x", 2),
    ("SELECT v FROM (SELECT {ref} AS v FROM employees e) t WHERE {use_t}", 1),
    ("SELECT e.id, (SELECT x.{h} FROM employees x WHERE x.id = e.id) AS v FROM employees e "
     "ORDER BY 2, 1", 2),
    ("SELECT e.id FROM employees e WHERE EXISTS "
     "(SELECT 1 FROM departments d WHERE d.id = e.department_id AND {use})", 1),
)  # fmt: skip


class _Attack:
    """Attack moves: a core that reads a protected value if the guard misjudges it, then a
    random context around it. Each move returns ``(sql, number of output columns)``."""

    def __init__(self, gen: _Gen, role: str) -> None:
        self.g = gen
        self.engine = gen.engine
        self.role = role

    def qualifier(self) -> str:
        return self.g.pick(_QUALIFIERS[self.engine])

    def hidden(self, table: str = "employees") -> str:
        return self.g.pick(sorted(_BAIT[table]))

    def use(self, ref: str, table: str = "employees") -> str:
        """A condition that is true for different rows in the two databases."""
        name = ref.rsplit(".", 1)[-1]
        bait = _BAIT[table].get(name, "1")
        return self.g.pick([f"{ref} IS NULL", f"{ref} = {bait}", f"{ref} IS NOT NULL"])

    # -- moves ------------------------------------------------------------------------------------
    def shadow(self) -> tuple[str, int]:
        g = self.g
        table = "secrets" if g.chance(0.25) else "employees"
        names = sorted({self.hidden(table) for _ in range(g.draw(st.integers(1, 2)))})
        lits = ", ".join(f"{_BAIT[table][n]} AS {n}" for n in names)
        variant = g.draw(st.integers(0, 5))
        if variant == 0:
            body = f"SELECT {lits}"
        elif variant == 1:
            renamed = ", ".join(f"d.name AS {n}" for n in names)
            body = f"SELECT d.id AS id, {renamed} FROM departments d"
        elif variant == 2:  # the body reads the real table through its qualified name
            body = f"SELECT {', '.join(names)} FROM {self.qualifier()}.{table}"
        else:
            body = f"SELECT 1 AS id, {lits}"
        x = g.alias("x")
        col = f"{x}.{names[0]}"
        qualified = f"{self.qualifier()}.{table} {x}"
        if variant == 3:  # referenced in an earlier CTE, where the name is still the table
            cte = f"WITH a0 AS (SELECT {col} AS v FROM {table} {x}), {table} AS ({body})"
            return f"{cte} SELECT a0.v FROM a0", 1
        if variant == 4:  # a CTE inside a scalar subquery
            inner = f"(WITH {table} AS ({body}) SELECT max({col}) FROM {qualified})"
            return f"SELECT {inner} AS v", 1
        use = g.draw(st.integers(0, 3))
        if use == 0:
            main = f"SELECT {col} AS v FROM {qualified}"
        elif use == 1:
            main = f"SELECT count(*) AS v FROM {qualified} WHERE {self.use(col, table)}"
        elif use == 2:
            main = (
                f"SELECT d.name AS v FROM departments d JOIN {qualified} ON {self.use(col, table)}"
            )
        else:
            main = f"SELECT v FROM (SELECT {col} AS v FROM {qualified}) t"
        return f"WITH {table} AS ({body}) {main}", 1

    def ungrounded(self) -> tuple[str, int]:
        g = self.g
        if self.role == "sys" and g.chance(0.7):
            item, alias, _, _, where = g.draw(st.sampled_from(_SYSTEM_ATTACK[self.engine]))
            source, filt = f"{item} {alias}", where
        else:
            source, filt = g.pick(_ONE_ROW[self.engine]), "1 = 1"
        shape = g.draw(st.integers(0, 4))
        if source == "DUAL" and shape < 3:
            shape = 3 + shape % 2  # DUAL only stands alone in a subquery
        h = self.hidden()
        return _UNGROUNDED_SHAPES[shape][0].format(s=source, f=filt, h=h, use=self.use(h)), (
            _UNGROUNDED_SHAPES[shape][1]
        )

    def system_columns(self) -> tuple[str, int]:
        g = self.g
        item, alias, granted, hidden, where = g.draw(st.sampled_from(_SYSTEM_ATTACK[self.engine]))
        h = f"{alias}.{g.pick(hidden)}" if g.chance(0.7) else g.pick(hidden)
        shape = g.draw(st.integers(0, 4))
        src = f"{item} {alias}"
        if shape == 0:
            return f"SELECT {alias}.{granted}, {h} FROM {src} WHERE {where}", 2
        if shape == 1:
            text = f"CAST({h} AS {_CAST_TEXT[self.engine]})"
            return f"SELECT {alias}.{granted} FROM {src} WHERE {where} AND {text} LIKE '%2%'", 1
        if shape == 2:
            return f"SELECT {alias}.* FROM {src} WHERE {where}", 0
        if shape == 3:
            return f"SELECT * FROM {src} WHERE {where}", 0
        return f"SELECT e.id, (SELECT max({h}) FROM {src} WHERE {where}) AS v FROM employees e", 2

    def masked(self) -> tuple[str, int]:
        """A masked (or, for the viewer, denied) value in one of many clauses."""
        g = self.g
        h = g.pick(list(_MASKED.get(self.role, ("ssn", "bonus", "notes", "salary", "email"))))
        template, arity = g.draw(st.sampled_from(_MASKED_PLACES))
        sql = template.format(
            ref=f"e.{h}", h=h, bait=_BAIT["employees"][h], use=self.use(f"e.{h}"),
            use_x=self.use(f"x.{h}"), use_t=self.use("t.v"),
        )  # fmt: skip
        return sql, arity

    def joins(self) -> tuple[str, int]:
        g = self.g
        h = self.hidden()
        t = f"(SELECT {_BAIT['employees'][h]} AS {h}, 'Ana' AS name) t"
        if g.chance(0.5):
            return f"SELECT e.id FROM employees e NATURAL JOIN {t}", 1
        return f"SELECT e.id FROM employees e JOIN {t} USING ({h})", 1

    def postgres_only(self) -> tuple[str, int]:
        g = self.g
        h = self.hidden()
        return g.pick(
            [
                "SELECT e::text AS v FROM employees e",
                f"SELECT to_jsonb(e) ->> '{h}' AS v FROM employees e",
                f"SELECT (e).{h} AS v FROM employees e",
                "SELECT count(*) AS v FROM employees e WHERE e::text LIKE '%-00-%'",
                f"SELECT l.v FROM employees e, LATERAL (SELECT e.{h} AS v) l",
                f"SELECT e.id FROM employees e CROSS JOIN LATERAL (SELECT e.{h} AS v) l "
                f"WHERE {self.use('l.v')}",
                "SELECT 'ni_hidden_kind'::regtype AS v",
                "SELECT CAST('ni_hidden_ns' AS regnamespace) AS v",
                "SELECT row_to_json(e) AS v FROM employees e",
            ]
        ), 1

    def core(self) -> tuple[str, int]:
        moves = [
            self.shadow,
            self.shadow,
            self.ungrounded,
            self.system_columns,
            self.masked,
            self.masked,
            self.joins,
        ]
        if self.engine == "postgres":
            moves.append(self.postgres_only)
        return self.g.draw(st.sampled_from(moves))()

    def statement(self) -> str:
        """A core in a random context: as is, in a derived table, a CTE, a union, EXISTS."""
        g = self.g
        sql, arity = self.core()
        wrap = g.draw(st.integers(0, 6))
        starts_with = sql.startswith("WITH")
        if wrap == 1:
            sql = f"SELECT * FROM ({sql}) w"
        elif wrap == 2 and not (starts_with and self.engine == "mysql"):
            sql = f"WITH w AS ({sql}) SELECT * FROM w"
        elif wrap == 3 and arity > 0:
            nulls = ", ".join(f"NULL AS n{i}" for i in range(arity))
            sql = (
                f"{sql} UNION ALL SELECT {nulls}"
                if not starts_with
                else f"SELECT * FROM ({sql}) w UNION ALL SELECT {nulls}"
            )
        elif wrap == 4:
            sql = f"SELECT count(*) AS n FROM departments d WHERE EXISTS ({sql})"
            arity = 1
        elif wrap == 5 and arity > 0 and " ORDER BY " not in sql:
            positions = ", ".join(str(i + 1) for i in range(arity))
            sql = f"SELECT * FROM ({sql}) w ORDER BY {positions} LIMIT 3"
        return sql


@st.composite
def statements(draw: st.DrawFn, engine: str, roles: tuple[str, ...]) -> Generated:
    """A statement template for ``engine`` and a role to judge it for."""
    role = draw(st.sampled_from(roles))
    gen = _Gen(draw, engine, role)
    if draw(st.booleans()):
        return Generated(_Attack(gen, role).statement(), role)
    return Generated(gen.statement(), role)
