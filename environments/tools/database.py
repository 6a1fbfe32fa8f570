"""`envgym/ToolUse-SQL-v0`: questions over a generated shop database, answered with a read-only `sql` tool.

Difficulty raises the number of joins a question needs (0 → 3), adds distractor columns and unrelated
tables, grows the data, and hides the schema from the intro (the agent must `describe_table` first). Every
answer is computed by running the gold query on the generated database, so question and answer always agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from envgym.actions import Tool
from envgym.core import Feedback, StepOutcome, handles
from envgym.environments.tools.answers import Expected, SubmitAnswer, format_number
from envgym.environments.tools.base import ToolParams, ToolTask, ToolTaskEnv, lerp_int
from envgym.environments.tools.readonly_sql import ReadOnlyDatabase, render_result
from envgym.environments.tools.vocab import (
    ADJECTIVES,
    CITIES,
    LAST_NAMES,
    PRODUCTS_BY_CATEGORY,
    full_names,
)

STATUSES = ("shipped", "cancelled", "pending")
YEARS = (2019, 2020, 2021, 2022, 2023, 2024)

# Core columns (name, SQL type) and the distractor columns a harder task adds, per table.
CORE: dict[str, list[tuple[str, str]]] = {
    "customers": [("id", "INTEGER PRIMARY KEY"), ("name", "TEXT"), ("city", "TEXT"), ("signup_year", "INTEGER")],
    "products": [("id", "INTEGER PRIMARY KEY"), ("name", "TEXT"), ("category", "TEXT"), ("price", "REAL")],
    "orders": [("id", "INTEGER PRIMARY KEY"), ("customer_id", "INTEGER"), ("year", "INTEGER"), ("status", "TEXT")],
    "order_items": [("order_id", "INTEGER"), ("product_id", "INTEGER"), ("quantity", "INTEGER")],
}
DISTRACTORS: dict[str, list[tuple[str, str]]] = {
    "customers": [
        ("previous_city", "TEXT"),
        ("loyalty_points", "INTEGER"),
        ("referred_by", "INTEGER"),
        ("vip", "INTEGER"),
    ],
    "products": [("list_price", "REAL"), ("weight_kg", "REAL"), ("old_category", "TEXT"), ("stock", "INTEGER")],
    "orders": [("ship_city", "TEXT"), ("created_year", "INTEGER"), ("priority", "INTEGER"), ("coupon", "TEXT")],
    "order_items": [
        ("returned_quantity", "INTEGER"),
        ("unit_discount", "REAL"),
        ("gift_wrap", "INTEGER"),
        ("line_no", "INTEGER"),
    ],
}
EXTRA_TABLES: dict[str, list[tuple[str, str]]] = {
    "suppliers": [("id", "INTEGER PRIMARY KEY"), ("name", "TEXT"), ("city", "TEXT"), ("rating", "REAL")],
    "reviews": [
        ("id", "INTEGER PRIMARY KEY"),
        ("product_id", "INTEGER"),
        ("customer_id", "INTEGER"),
        ("stars", "INTEGER"),
    ],
    "shipments": [("id", "INTEGER PRIMARY KEY"), ("order_id", "INTEGER"), ("city", "TEXT"), ("quantity", "INTEGER")],
}


class Sql(Tool):
    """Run one read-only SQL query (SQLite dialect, SELECT only) on the database and see up to 50 rows."""

    name: ClassVar[str] = "sql"
    query: str = Field(description="a single SELECT statement")


class DescribeTable(Tool):
    """Show the columns and types of one table."""

    name: ClassVar[str] = "describe_table"
    table: str = Field(description="a table name from the intro")


class SqlParams(ToolParams):
    joins: int = Field(default=1, ge=0, le=3, description="joins the question needs")
    distractor_columns: int = Field(default=1, ge=0, le=4, description="misleading extra columns per table")
    extra_tables: int = Field(default=1, ge=0, le=3, description="unrelated tables in the database")
    customers: int = Field(default=20, ge=6, le=500)
    products: int = Field(default=15, ge=6, le=42)
    orders: int = Field(default=50, ge=10, le=5000)
    show_schema: bool = Field(default=True, description="print the full schema in the intro")
    candidates: int = Field(default=5, ge=1, le=20, description="plausible answers the random agent picks from")


@dataclass
class Question:
    text: str
    sql: str
    kind: str  # number | text | set
    tables: tuple[str, ...]
    digits: int | None = None  # numbers rounded to this many decimals


def lit(value: object) -> str:
    """A SQL literal for a generated value (the env's own values; agent text never goes through here)."""
    return f"'{str(value).replace(chr(39), chr(39) * 2)}'" if isinstance(value, str) else str(value)


class SqlEnv(ToolTaskEnv):
    env_id: ClassVar[str] = "envgym/ToolUse-SQL-v0"
    family: ClassVar[str] = "sql"
    tools: ClassVar[tuple[type[Tool], ...]] = (Sql, DescribeTable, SubmitAnswer)
    Params: ClassVar[type[ToolParams]] = SqlParams

    params: SqlParams
    db: ReadOnlyDatabase | None = None

    def params_for(self, difficulty: float) -> SqlParams:
        return SqlParams(
            joins=lerp_int(difficulty, 0, 3),
            distractor_columns=lerp_int(difficulty, 0, 4),
            extra_tables=lerp_int(difficulty, 0, 3),
            customers=lerp_int(difficulty, 8, 40),
            products=lerp_int(difficulty, 8, 30),
            orders=lerp_int(difficulty, 15, 120),
            show_schema=difficulty < 0.5,
            hints=difficulty <= 0.5,
            slack=lerp_int(difficulty, 4, 2),
            candidates=lerp_int(difficulty, 3, 10),
        )

    # ----- world ------------------------------------------------------------------------------------------
    def _schema(self, p: SqlParams) -> dict[str, list[tuple[str, str]]]:
        rng = self.task_rng
        schema: dict[str, list[tuple[str, str]]] = {}
        for table, columns in CORE.items():
            picks = sorted(rng.choice(len(DISTRACTORS[table]), size=p.distractor_columns, replace=False).tolist())
            schema[table] = columns + [DISTRACTORS[table][i] for i in picks]
        extra = sorted(EXTRA_TABLES)
        for i in sorted(rng.choice(len(extra), size=p.extra_tables, replace=False).tolist()):
            schema[extra[i]] = EXTRA_TABLES[extra[i]]
        return schema

    def _rows(self, p: SqlParams, schema: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[object, ...]]]:
        rng = self.task_rng
        cities = [str(c) for c in rng.choice(CITIES, size=lerp_int(self.difficulty, 3, 8), replace=False)]
        people = full_names()
        names = [people[i] for i in rng.choice(len(people), size=p.customers, replace=False)]
        categories = sorted(PRODUCTS_BY_CATEGORY)
        goods = [f"{a} {n}" for c in categories for a in ADJECTIVES[:6] for n in PRODUCTS_BY_CATEGORY[c]]
        goods_cat = {f"{a} {n}": c for c in categories for a in ADJECTIVES[:6] for n in PRODUCTS_BY_CATEGORY[c]}
        product_names = [goods[i] for i in rng.choice(len(goods), size=p.products, replace=False)]

        def extra(table: str, base: tuple[object, ...]) -> tuple[object, ...]:
            values: list[object] = list(base)
            for column, kind in schema[table][len(CORE.get(table, [])) :] if table in CORE else []:
                if column in ("previous_city", "ship_city"):
                    values.append(str(rng.choice(cities)))
                elif column == "old_category":
                    values.append(str(rng.choice(categories)))
                elif column == "coupon":
                    values.append(str(rng.choice(["NONE", "SAVE10", "VIP5"])))
                elif kind == "REAL":
                    values.append(round(float(rng.uniform(1, 250)), 2))
                else:
                    values.append(int(rng.integers(0, 6)) if column != "created_year" else int(rng.choice(YEARS)))
            return tuple(values)

        rows: dict[str, list[tuple[object, ...]]] = {t: [] for t in schema}
        for i, name in enumerate(names, 1):
            rows["customers"].append(extra("customers", (i, name, str(rng.choice(cities)), int(rng.choice(YEARS)))))
        for i, name in enumerate(product_names, 1):
            price = round(float(rng.uniform(2, 200)), 2)
            rows["products"].append(extra("products", (i, name, goods_cat[name], price)))
        for i in range(1, p.orders + 1):
            status = str(rng.choice(STATUSES, p=[0.6, 0.2, 0.2]))
            rows["orders"].append(
                extra("orders", (i, int(rng.integers(1, p.customers + 1)), int(rng.choice(YEARS)), status))
            )
            for pid in rng.choice(p.products, size=int(rng.integers(1, 4)), replace=False).tolist():
                rows["order_items"].append(extra("order_items", (i, pid + 1, int(rng.integers(1, 6)))))
        for table in schema:
            if table in CORE:
                continue
            for i in range(1, int(rng.integers(5, 15))):
                if table == "suppliers":
                    rows[table].append((i, f"{rng.choice(LAST_NAMES)} Supply", str(rng.choice(cities)), 3.5))
                elif table == "reviews":
                    rows[table].append(
                        (
                            i,
                            int(rng.integers(1, p.products + 1)),
                            int(rng.integers(1, p.customers + 1)),
                            int(rng.integers(1, 6)),
                        )
                    )
                else:
                    rows[table].append(
                        (i, int(rng.integers(1, p.orders + 1)), str(rng.choice(cities)), int(rng.integers(1, 6)))
                    )
        return rows

    # ----- questions --------------------------------------------------------------------------------------
    def _templates(self, joins: int) -> list[Callable[[np.random.Generator], Question]]:
        def value(sql: str) -> list[object]:
            assert self.db is not None
            return [r[0] for r in self.db.trusted_query(sql)]

        def pick(sql: str, rng: np.random.Generator) -> object:
            values = sorted(set(value(sql)), key=str)
            return values[int(rng.integers(len(values)))]

        def count_city(rng: np.random.Generator) -> Question:
            city = pick("SELECT city FROM customers", rng)
            return Question(
                f"How many customers live in {city}?",
                f"SELECT COUNT(*) FROM customers WHERE city = {lit(city)}",
                "number",
                ("customers",),
            )

        def max_price(rng: np.random.Generator) -> Question:
            cat = pick("SELECT category FROM products", rng)
            return Question(
                f"What is the price of the most expensive product in category '{cat}'?",
                f"SELECT MAX(price) FROM products WHERE category = {lit(cat)}",
                "number",
                ("products",),
                2,
            )

        def cheapest(rng: np.random.Generator) -> Question:
            cat = pick("SELECT category FROM products", rng)
            return Question(
                f"What is the name of the cheapest product in category '{cat}'?",
                f"SELECT name FROM products WHERE category = {lit(cat)} ORDER BY price ASC LIMIT 1",
                "text",
                ("products",),
            )

        def shipped_by_city(rng: np.random.Generator) -> Question:
            city = pick("SELECT city FROM customers", rng)
            return Question(
                f"How many orders with status 'shipped' were placed by customers who live in {city}?",
                f"SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.city = {lit(city)} AND o.status = 'shipped'",
                "number",
                ("customers", "orders"),
            )

        def quantity_of(rng: np.random.Generator) -> Question:
            name = pick("SELECT p.name FROM products p JOIN order_items i ON i.product_id = p.id", rng)
            return Question(
                f"What is the total quantity of '{name}' across all order items (any order status)?",
                f"SELECT SUM(i.quantity) FROM order_items i JOIN products p ON p.id = i.product_id WHERE p.name = {lit(name)}",
                "number",
                ("order_items", "products"),
            )

        def revenue_year(rng: np.random.Generator) -> Question:
            year = pick("SELECT year FROM orders WHERE status = 'shipped'", rng)
            cat = pick("SELECT category FROM products", rng)
            return Question(
                f"What is the total revenue (sum of quantity × product price) of '{cat}' products in shipped orders from {year}? Round to 2 decimals.",
                "SELECT ROUND(COALESCE(SUM(i.quantity * p.price), 0), 2) FROM orders o JOIN order_items i ON i.order_id = o.id "
                f"JOIN products p ON p.id = i.product_id WHERE o.status = 'shipped' AND o.year = {year} AND p.category = {lit(cat)}",
                "number",
                ("orders", "order_items", "products"),
                2,
            )

        def top_customer(rng: np.random.Generator) -> Question:
            year = pick("SELECT year FROM orders WHERE status = 'shipped'", rng)
            return Question(
                f"Which customer (name) bought the largest total quantity of items in shipped orders from {year}?",
                "SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id JOIN order_items i ON i.order_id = o.id "
                f"WHERE o.status = 'shipped' AND o.year = {year} GROUP BY c.id ORDER BY SUM(i.quantity) DESC LIMIT 1",
                "text",
                ("customers", "orders", "order_items"),
            )

        def buyers_set(rng: np.random.Generator) -> Question:
            city = pick("SELECT city FROM customers", rng)
            cat = pick("SELECT category FROM products", rng)
            return Question(
                f"List the names of all customers living in {city} who have at least one shipped order containing a '{cat}' product.",
                "SELECT DISTINCT c.name FROM customers c JOIN orders o ON o.customer_id = c.id JOIN order_items i ON i.order_id = o.id "
                f"JOIN products p ON p.id = i.product_id WHERE c.city = {lit(city)} AND o.status = 'shipped' AND p.category = {lit(cat)}",
                "set",
                ("customers", "orders", "order_items", "products"),
            )

        def city_revenue(rng: np.random.Generator) -> Question:
            city = pick("SELECT city FROM customers", rng)
            cat = pick("SELECT category FROM products", rng)
            return Question(
                f"What is the total amount (sum of quantity × product price) that customers living in {city} spent on '{cat}' products in shipped orders? Round to 2 decimals.",
                "SELECT ROUND(COALESCE(SUM(i.quantity * p.price), 0), 2) FROM customers c JOIN orders o ON o.customer_id = c.id "
                f"JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id WHERE c.city = {lit(city)} "
                f"AND o.status = 'shipped' AND p.category = {lit(cat)}",
                "number",
                ("customers", "orders", "order_items", "products"),
                2,
            )

        by_joins: list[list[Callable[[np.random.Generator], Question]]] = [
            [count_city, max_price, cheapest],
            [shipped_by_city, quantity_of],
            [revenue_year, top_customer],
            [buyers_set, city_revenue],
        ]
        return list(by_joins[joins])

    def _answer(self, q: Question) -> Any:
        assert self.db is not None
        rows = self.db.trusted_query(q.sql)
        if q.kind == "set":
            return sorted(str(r[0]) for r in rows)
        if not rows or rows[0][0] is None:
            return None
        if q.kind == "number":
            return round(float(rows[0][0]), q.digits) if q.digits is not None else float(rows[0][0])  # type: ignore[arg-type]
        return str(rows[0][0])

    def _unambiguous(self, q: Question, answer: Any) -> bool:
        """Rejects degenerate tasks: empty answers, zero counts, ties for 'the cheapest' / 'the largest'."""
        if answer is None or answer == [] or answer == 0:
            return False
        if q.kind == "text":
            tie_sql = q.sql.replace("SELECT name", "SELECT price").replace("SELECT c.name", "SELECT SUM(i.quantity)")
            top = self.db.trusted_query(tie_sql.replace("LIMIT 1", "LIMIT 2")) if self.db else []
            return len(top) < 2 or top[0][0] != top[1][0]
        return True

    def _build(self, p: SqlParams) -> ToolTask:  # type: ignore[override]
        if self.db is not None:
            self.db.close()
        schema = self._schema(p)
        self.schema = schema
        rows = self._rows(p, schema)
        self.db = ReadOnlyDatabase()
        self.db.build([self._create(t, cols) for t, cols in schema.items()], rows)
        self.db.seal()
        rng = self.task_rng
        templates = self._templates(p.joins)
        question, answer = None, None
        for _ in range(200):
            q = templates[int(rng.integers(len(templates)))](rng)
            a = self._answer(q)
            if self._unambiguous(q, a):
                question, answer = q, a
                break
        if question is None or answer is None:
            raise RuntimeError("could not generate a well-posed SQL question; try another seed")
        candidates = {self._display(question, answer)}
        for _ in range(4 * p.candidates):
            if len(candidates) >= p.candidates:
                break
            other = templates[int(rng.integers(len(templates)))](rng)
            other_answer = self._answer(other)
            if other.kind == question.kind and other_answer not in (None, []):
                candidates.add(self._display(other, other_answer))
        ordered = sorted(candidates)
        ordered = [ordered[i] for i in rng.permutation(len(ordered))]
        if question.kind == "number":
            tol = 0.005 if question.digits is not None else 1e-6
            expected = Expected(kind="number", value=float(answer), abs_tol=tol)
        else:
            expected = Expected(kind=question.kind, value=answer)  # type: ignore[arg-type]
        gold: list[Tool] = [] if p.show_schema else [DescribeTable(table=t) for t in question.tables]
        gold.append(Sql(query=question.sql))
        gold_answer = answer if question.kind != "number" else format_number(float(answer))
        return ToolTask(self._intro(p, question), expected, gold, gold_answer, ordered)

    def _display(self, q: Question, answer: Any) -> str:
        if q.kind == "set":
            return ", ".join(answer)
        return format_number(float(answer)) if q.kind == "number" else str(answer)

    @staticmethod
    def _create(table: str, columns: list[tuple[str, str]]) -> str:
        return f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in columns)})"

    def _intro(self, p: SqlParams, q: Question) -> str:
        lines = ["You can query a read-only SQLite database of a small shop with the `sql` tool.", ""]
        if p.show_schema:
            lines += ["Schema:"] + [self._create(t, c) + ";" for t, c in self.schema.items()]
        else:
            lines += [f"Tables: {', '.join(self.schema)}. Use `describe_table` to see their columns."]
        lines += ["", f"Question: {q.text}", "When you know the answer, call `submit_answer` (one submission)."]
        return "\n".join(lines)

    # ----- tools ------------------------------------------------------------------------------------------
    @handles(DescribeTable)
    def _describe_table(self, call: DescribeTable) -> StepOutcome:
        table = call.table.strip().lower()
        if table not in self.schema:
            return StepOutcome(
                feedback=Feedback(
                    summary=f"No table named {call.table[:60]!r}.",
                    error=f"known tables: {', '.join(self.schema)}",
                    hint=self.hint("pass just the table name, exactly as listed"),
                )
            )
        cols = "\n".join(f"  {c} {t}" for c, t in self.schema[table])
        return StepOutcome(feedback=Feedback(summary=f"Table {table}:", details=cols))

    @handles(Sql)
    def _sql(self, call: Sql) -> StepOutcome:
        assert self.db is not None
        result = self.db.query(call.query)
        if result.error is not None:
            return StepOutcome(
                feedback=Feedback(
                    summary="The query failed; the database is unchanged.",
                    error=result.error,
                    hint=self.hint("one SELECT statement per call; see the schema for column names"),
                )
            )
        if not result.columns:
            return StepOutcome(feedback=Feedback(summary="The statement ran but returned no result set."))
        rows = len(result.rows)
        hint = None
        if rows == 0:
            hint = self.hint("no rows matched: check spelling and case of the values in your WHERE clause")
        summary = f"{rows}{'+' if result.more_rows else ''} row(s)."
        return StepOutcome(feedback=Feedback(summary=summary, details=render_result(result), hint=hint))

    def _random_call(self, tool: type[Tool], rng: np.random.Generator) -> Tool:
        tables = list(self.schema)
        table = tables[int(rng.integers(len(tables)))]
        if tool is DescribeTable:
            return DescribeTable(table=table)
        column = self.schema[table][int(rng.integers(len(self.schema[table])))][0]
        shapes = [
            f"SELECT * FROM {table} LIMIT 5",
            f"SELECT COUNT(*) FROM {table}",
            f"SELECT {column}, COUNT(*) FROM {table} GROUP BY {column}",
            f"SELECT MAX({column}) FROM {table}",
        ]
        return Sql(query=shapes[int(rng.integers(len(shapes)))])

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        super().close()
