"""Seeded AST mutation operators that plant realistic bugs in Python source with minimal text edits.

Why text splices instead of `ast.unparse` of the whole file: the gold patch must be the exact, small diff back to
the original (comments, formatting and quotes untouched). Each candidate is found on the AST, rendered by
unparsing only the changed node (or deleting whole statement lines), spliced into the original text, and kept only
if re-parsing the result gives exactly the intended AST (parenthesising when precedence demands it).
"""

from __future__ import annotations

import ast
import copy
import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np

from envgym.environments.swe.schema import MutationRecord

# How hard each operator's bug is to spot by reading the code (0 obvious .. 1 subtle); feeds difficulty.
SUBTLETY: dict[str, float] = {
    "flip_comparison": 0.3,
    "invert_condition": 0.3,
    "bool_operator": 0.4,
    "drop_not": 0.4,
    "arith_operator": 0.4,
    "drop_raise": 0.5,
    "drop_return": 0.5,
    "swap_operands": 0.5,
    "change_constant": 0.5,
    "drop_statement": 0.6,
    "drop_branch": 0.6,
    "swap_arguments": 0.6,
    "wrong_variable": 0.7,
    "off_by_one": 0.8,
    "boundary_comparison": 0.8,
}

_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq,
         ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}  # fmt: skip
_BOUNDARY: dict[type[ast.cmpop], type[ast.cmpop]] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
_ARITH: dict[type[ast.operator], type[ast.operator]] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv,
          ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.LShift: ast.RShift, ast.RShift: ast.LShift}  # fmt: skip
_NON_COMMUTATIVE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift)


@dataclass(frozen=True)
class Edit:
    """Replace source[start:end] (character offsets into the original text) with `text`."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Site:
    """Where a mutation could go, before it is rendered and verified."""

    file: str
    operator: str
    line: int
    function: str
    node_index: int
    variant: int


@dataclass(frozen=True)
class Mutation:
    """One candidate bug in one file: the edit plus what to record about it."""

    file: str
    operator: str
    line: int
    function: str
    edit: Edit
    original: str
    mutated: str

    @property
    def site(self) -> tuple[str, str]:
        return (self.file, self.function)

    def record(self) -> MutationRecord:
        return MutationRecord(
            operator=self.operator,
            file=self.file,
            line=self.line,
            original=self.original,
            mutated=self.mutated,
            subtlety=SUBTLETY[self.operator],
        )


Transform = Callable[[ast.AST], ast.AST | None]
Candidate = tuple[str, ast.AST, Transform | None]


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split on "\n" only (str.splitlines also splits on form feeds and friends,
    which neither Python's tokenizer nor git treat as line breaks)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _line_offsets(source: str) -> list[int]:
    offsets, pos = [0], 0
    for line in split_lines(source):
        pos += len(line)
        offsets.append(pos)
    return offsets


def _char_offset(lines: list[str], offsets: list[int], lineno: int, col_bytes: int) -> int:
    """AST columns are UTF-8 byte offsets; convert to a character offset into the whole text."""
    line = lines[lineno - 1]
    col = len(line.encode("utf-8")[:col_bytes].decode("utf-8", errors="ignore"))
    return offsets[lineno - 1] + col


def _dump(tree: ast.AST) -> str:
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _replace_child(parent: ast.AST, old: ast.AST, new: ast.AST | None) -> bool:
    """Put `new` where `old` sits in `parent` (None removes it from a statement list)."""
    for field, value in ast.iter_fields(parent):
        if value is old and new is not None:
            setattr(parent, field, new)
            return True
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    if new is None:
                        del value[i]
                        if not value:
                            value.append(ast.Pass())
                    else:
                        value[i] = new
                    return True
    return False


class _Scanner:
    """Walks one module and yields candidate mutations for the nodes inside function bodies."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.source = source
        self.lines = split_lines(source)
        self.offsets = _line_offsets(source)
        self.tree = ast.parse(source)
        self.original_dump = _dump(self.tree)
        self.nodes = list(ast.walk(self.tree))
        self.parents: dict[int, ast.AST] = {}
        for node in self.nodes:
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
        self.functions: dict[int, str] = {}
        self._assign_functions(self.tree, "")

    def _assign_functions(self, node: ast.AST, current: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = current
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{current}.{child.name}" if current else child.name
            elif isinstance(child, ast.ClassDef):
                name = f"{current}.{child.name}" if current else child.name
                self._assign_functions(child, name if current else "")
                continue
            if name and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions[id(child)] = name
            self._assign_functions(child, name)

    # ----- rendering ---------------------------------------------------------------------------------
    def _span(self, node: ast.AST) -> tuple[int, int]:
        start = _char_offset(self.lines, self.offsets, node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = _char_offset(self.lines, self.offsets, node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def _expected(self, index: int, transform: Transform) -> tuple[str, ast.AST | None] | None:
        """Apply `transform` to a copy of node `index`; return the expected module dump and the new node."""
        tree = copy.deepcopy(self.tree)
        nodes = list(ast.walk(tree))
        target = nodes[index]
        parent = next((n for n in nodes if target in list(ast.iter_child_nodes(n))), None)
        if parent is None:
            return None
        new = transform(copy.deepcopy(target))
        if not _replace_child(parent, target, new):
            return None
        return _dump(tree), new

    def expression(self, operator: str, node: ast.AST, transform: Transform) -> Mutation | None:
        """Replace one single-line expression node by the unparsed transformed node."""
        if getattr(node, "lineno", None) is None or node.lineno != node.end_lineno:  # type: ignore[attr-defined]
            return None
        index = self.nodes.index(node)
        expected = self._expected(index, transform)
        if expected is None or expected[1] is None:
            return None
        expected_dump, new_node = expected
        start, end = self._span(node)
        text = ast.unparse(new_node)  # type: ignore[arg-type]
        for candidate in (text, f"({text})"):
            mutated = self.source[:start] + candidate + self.source[end:]
            try:
                if _dump(ast.parse(mutated)) == expected_dump and expected_dump != self.original_dump:
                    return self._make(operator, node, Edit(start, end, candidate))
            except SyntaxError:
                continue
        return None

    def drop_statement(self, operator: str, stmt: ast.stmt) -> Mutation | None:
        """Delete whole lines holding one statement (`pass` if its block would be empty)."""
        first = self.lines[stmt.lineno - 1]
        end_lineno = stmt.end_lineno or stmt.lineno
        _start, end = self._span(stmt)
        if first[: len(first) - len(first.lstrip())] != first[: stmt.col_offset] or first[: stmt.col_offset].strip():
            return None
        tail = self.source[end : self.offsets[end_lineno]]
        if tail.strip() and not tail.strip().startswith("#"):
            return None
        parent = self.parents.get(id(stmt))
        siblings = next(
            (v for _, v in ast.iter_fields(parent) if isinstance(v, list) and stmt in v), []
        ) if parent else []  # fmt: skip
        line_start, line_end = self.offsets[stmt.lineno - 1], self.offsets[stmt.end_lineno]  # type: ignore[index]
        text = (first[: stmt.col_offset] + "pass\n") if len(siblings) == 1 else ""
        expected = self._expected(self.nodes.index(stmt), lambda n: None)
        if expected is None:
            return None
        mutated = self.source[:line_start] + text + self.source[line_end:]
        try:
            if _dump(ast.parse(mutated)) != expected[0]:
                return None
        except SyntaxError:
            return None
        return self._make(operator, stmt, Edit(line_start, line_end, text))

    def _make(self, operator: str, node: ast.AST, edit: Edit) -> Mutation:
        lineno = node.lineno  # type: ignore[attr-defined]
        end_lineno = node.end_lineno  # type: ignore[attr-defined]
        original = "".join(self.lines[lineno - 1 : end_lineno])
        mutated_source = self.source[: edit.start] + edit.text + self.source[edit.end :]
        mutated_lines = split_lines(mutated_source)
        delta = len(mutated_lines) - len(self.lines)
        mutated = "".join(mutated_lines[lineno - 1 : end_lineno + delta])
        return Mutation(
            file=self.path,
            operator=operator,
            line=lineno,
            function=self.functions.get(id(node), ""),
            edit=edit,
            original=original,
            mutated=mutated,
        )

    # ----- operators ---------------------------------------------------------------------------------
    def sites(self) -> Iterator[Site]:
        """Cheap candidate sites (nothing rendered yet): verification happens in `realize`."""
        for index, node in enumerate(self.nodes):
            if id(node) not in self.functions:
                continue
            for number, (operator, target, _) in enumerate(self._node_candidates(node)):
                yield Site(self.path, operator, target.lineno, self.functions[id(node)], index, number)  # type: ignore[attr-defined]

    def realize(self, site: Site) -> Mutation | None:
        operator, target, transform = list(self._node_candidates(self.nodes[site.node_index]))[site.variant]
        if transform is None:
            return self.drop_statement(operator, target)  # type: ignore[arg-type]
        return self.expression(operator, target, transform)

    def _node_candidates(self, node: ast.AST) -> Iterator[Candidate]:
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            op = type(node.ops[0])
            if op in _FLIP:
                yield ("flip_comparison", node, partial(_set_op, op_type=_FLIP[op]))
            if op in _BOUNDARY:
                yield ("boundary_comparison", node, partial(_set_op, op_type=_BOUNDARY[op]))
                yield ("swap_operands", node, _swap_compare)
        elif isinstance(node, ast.BinOp):
            binop = type(node.op)
            if binop in _ARITH and not _is_string_op(node):
                yield ("arith_operator", node, partial(_set_binop, op_type=_ARITH[binop]))
            if isinstance(node.op, _NON_COMMUTATIVE) and not _is_string_op(node):
                yield ("swap_operands", node, _swap_binop)
        elif isinstance(node, ast.BoolOp):
            other = ast.Or if isinstance(node.op, ast.And) else ast.And
            yield ("bool_operator", node, partial(_set_boolop, op_type=other))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield ("drop_not", node, _operand)
        elif isinstance(node, ast.Call) and len(node.args) >= 2 and not node.keywords:
            if not any(isinstance(a, ast.Starred) for a in node.args[:2]) and _dump(node.args[0]) != _dump(
                node.args[1]
            ):
                yield ("swap_arguments", node, _swap_args)
        elif isinstance(node, ast.Constant) and type(node.value) in (int, bool):
            yield from self._constant_candidates(node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            yield from self._wrong_variable(node)
        elif isinstance(node, ast.If):
            yield ("invert_condition", node.test, _negate)
            if not node.orelse and self._in_block(node):
                yield ("drop_branch", node, None)
        elif isinstance(node, ast.Return) and node.value is not None and isinstance(self.parents.get(id(node)), ast.If):
            yield ("drop_return", node, None)
        elif isinstance(node, ast.Raise) and isinstance(self.parents.get(id(node)), ast.If):
            yield ("drop_raise", node, None)
        elif (
            isinstance(node, ast.Assign | ast.AugAssign)
            or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))
        ) and self._in_block(node):
            yield ("drop_statement", node, None)  # type: ignore[arg-type]

    def _in_block(self, stmt: ast.AST) -> bool:
        parent = self.parents.get(id(stmt))
        return any(isinstance(v, list) and stmt in v and len(v) >= 2 for _, v in ast.iter_fields(parent or stmt))

    def _constant_candidates(self, node: ast.Constant) -> Iterator[Candidate]:
        if isinstance(node.value, bool):
            yield ("change_constant", node, _negate_constant)
            return
        parent = self.parents.get(id(node))
        in_index = isinstance(parent, ast.Slice | ast.Subscript) or (
            isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "range"
        )
        in_arith = isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Add | ast.Sub)
        in_compare = isinstance(parent, ast.Compare)
        value = int(node.value)  # type: ignore[arg-type]
        if isinstance(parent, ast.UnaryOp):
            return
        if in_index or in_arith or in_compare:
            for delta in (1, -1):
                if value + delta >= 0:
                    yield ("off_by_one", node, partial(_shift_constant, delta=delta))
        elif value in (0, 1):
            yield ("change_constant", node, _flip_bit_constant)

    def _wrong_variable(self, node: ast.Name) -> Iterator[Candidate]:
        func = self._enclosing_function(node)
        if func is None:
            return
        local = sorted(_local_names(func) - {node.id, "self", "cls"})
        if node.id not in _local_names(func) or not local:
            return
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Call) and parent.func is node:
            return
        # a deterministic pick among the other locals (stable across runs: no salted hash())
        replacement = min(local, key=lambda name: (abs(hash_name(name) - hash_name(node.id)), name))
        yield ("wrong_variable", node, partial(_rename, name=replacement))

    def _enclosing_function(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        current = self.parents.get(id(node))
        while current is not None and not isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef):
            current = self.parents.get(id(current))
        return current


def hash_name(name: str) -> int:
    """A stable (non-salted) small number for a name, so `wrong_variable` picks the same slip every run."""
    return sum(ord(c) * (i + 1) for i, c in enumerate(name)) % 997


def _local_names(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = {a.arg for a in func.args.args + func.args.kwonlyargs + func.args.posonlyargs}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _is_string_op(node: ast.BinOp) -> bool:
    return any(
        isinstance(side, ast.Constant) and isinstance(side.value, str | bytes) for side in (node.left, node.right)
    )


def _set_op(node: ast.AST, op_type: type[ast.cmpop]) -> ast.AST:
    node.ops = [op_type()]  # type: ignore[attr-defined]
    return node


def _set_binop(node: ast.AST, op_type: type[ast.operator]) -> ast.AST:
    node.op = op_type()  # type: ignore[attr-defined]
    return node


def _set_boolop(node: ast.AST, op_type: type[ast.boolop]) -> ast.AST:
    node.op = op_type()  # type: ignore[attr-defined]
    return node


def _operand(node: ast.AST) -> ast.AST:
    return node.operand  # type: ignore[attr-defined,no-any-return]


def _negate_constant(node: ast.AST) -> ast.AST:
    return ast.Constant(value=not node.value)  # type: ignore[attr-defined]


def _shift_constant(node: ast.AST, delta: int) -> ast.AST:
    return ast.Constant(value=node.value + delta)  # type: ignore[attr-defined]


def _flip_bit_constant(node: ast.AST) -> ast.AST:
    return ast.Constant(value=1 - node.value)  # type: ignore[attr-defined]


def _rename(node: ast.AST, name: str) -> ast.AST:
    del node
    return ast.Name(id=name, ctx=ast.Load())


def _swap_compare(node: ast.AST) -> ast.AST:
    node.left, node.comparators = node.comparators[0], [node.left]  # type: ignore[attr-defined]
    return node


def _swap_binop(node: ast.AST) -> ast.AST:
    node.left, node.right = node.right, node.left  # type: ignore[attr-defined]
    return node


def _swap_args(node: ast.AST) -> ast.AST:
    args = node.args  # type: ignore[attr-defined]
    args[0], args[1] = args[1], args[0]
    return node


def _negate(node: ast.AST) -> ast.AST:
    return ast.UnaryOp(op=ast.Not(), operand=node)  # type: ignore[arg-type]


# ----- public API ------------------------------------------------------------------------------------------
class ModuleMutator:
    """Candidate sites of one module and the means to render them (parsed once, realised lazily)."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.source = source
        self._scanner = _Scanner(path, source)

    def sites(self) -> list[Site]:
        return list(self._scanner.sites())

    def realize(self, site: Site) -> Mutation | None:
        """Render and verify one site; None when the text splice cannot reproduce the intended AST."""
        return self._scanner.realize(site)


def find_mutations(path: str, source: str) -> list[Mutation]:
    """Every verified mutation in one module, in AST walk order (deterministic; slow on big files)."""
    try:
        mutator = ModuleMutator(path, source)
    except SyntaxError:
        return []
    found = (mutator.realize(site) for site in mutator.sites())
    return [m for m in found if m is not None]


def apply_mutations(source: str, mutations: list[Mutation]) -> str:
    """Apply non-overlapping edits to one file's original text (bottom-up, so offsets stay valid)."""
    edits = sorted((m.edit for m in mutations), key=lambda e: e.start, reverse=True)
    previous_start = len(source) + 1
    for edit in edits:
        if edit.end > previous_start:
            raise ValueError("overlapping mutations")
        source = source[: edit.start] + edit.text + source[edit.end :]
        previous_start = edit.start
    return source


def order_sites(candidates: list[Site], rng: np.random.Generator) -> list[Site]:
    """Seeded order that interleaves operators, so a small count still covers many kinds of bug."""
    by_operator: dict[str, list[Site]] = {}
    for mutation in candidates:
        by_operator.setdefault(mutation.operator, []).append(mutation)
    queues = []
    for operator in sorted(by_operator):
        items = by_operator[operator]
        queues.append([items[i] for i in rng.permutation(len(items))])
    operator_order = [queues[i] for i in rng.permutation(len(queues))]
    ordered: list[Site] = []
    while any(operator_order):
        for queue in operator_order:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def unified_diff(path: str, old: str, new: str) -> str:
    """A `git apply`-compatible unified diff of one file (handles a missing final newline)."""
    if old == new:
        return ""
    old_lines = split_lines(old)
    new_lines = split_lines(new)
    out = [f"diff --git a/{path} b/{path}\n"]
    for line in difflib.unified_diff(old_lines, new_lines, f"a/{path}", f"b/{path}", n=3):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
