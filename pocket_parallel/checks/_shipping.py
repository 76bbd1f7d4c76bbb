"""Ship a student's answer to a fresh Python process: its own source, and what it uses from the notebook.

A check runs the answer in a subprocess (see :mod:`._sandbox`), where no cell of the notebook
can patch the check or read its frames. The subprocess cannot receive the class or function
itself, only text, so :func:`ship` writes the source of a module that rebuilds it:

- the answer's own ``class`` or ``def`` statement, found through its code: a function's
  ``__code__.co_filename`` and ``co_firstlineno``, a class's through one of its methods (on
  Python 3.11 ``inspect.getsource`` fails for a class defined in an IPython cell, because
  ``__main__`` has no file; the cell's text is in ``linecache`` under the code's file name);
- every global name that statement uses, recursively: a module or an object of an importable
  library becomes an import; a plain value (numbers, strings, and lists, tuples, dicts and sets
  of them) is copied; a class, a function or any other value made in the notebook is rebuilt
  from the statement that made it (its ``def`` or ``class``, or its last top-level assignment
  in the cells run so far, IPython's ``_ih``).

The statements keep their file names and line numbers (each is compiled on its own, padded
with blank lines), so a traceback in the subprocess points into the student's cell as it would
in the notebook. The module is written to a real file there, so that processes a pool starts
with ``spawn`` or ``forkserver`` can import the functions it defines.
"""

from __future__ import annotations

import __future__

import ast
import builtins
import linecache
import math
import pickle
import symtable
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ._errors import library_file

_ANNOTATIONS = __future__.annotations.compiler_flag
#: How many values, at most, a plain value may hold to be copied (beyond that it is rebuilt from its statement).
_PLAIN_LIMIT = 100_000
_ATOMS = (type(None), bool, int, float, complex, str, bytes)


class CannotShip(Exception):
    """The answer cannot be rebuilt from source; the message says why and what to do, for the student."""


@dataclass(frozen=True)
class Shipment:
    """The source of a module that rebuilds the answer, and the name it has there.

    ``missing`` names the globals the answer uses that could not be rebuilt (with what they
    are), so that a ``NameError`` in the subprocess can be explained.
    """

    name: str
    source: str
    missing: dict[str, str] = field(default_factory=dict)


@dataclass
class _Statement:
    """One top-level statement of the student's code, where it came from, and the names it needs."""

    filename: str
    first_line: int
    source: str
    flags: int
    rank: tuple[int, int]
    binds: frozenset[str]
    uses: frozenset[str] = frozenset()  # every global name it needs, now or when its code runs
    needs_first: frozenset[str] = frozenset()  # the names it needs while the statement itself runs

    def code(self) -> str:
        return f"exec(__pp_at({self.source!r}, {self.filename!r}, {self.first_line}, {self.flags}), globals())"


@dataclass
class _Unit:
    """A piece of source the student's code may come from: an IPython cell, a file, an exec'd string."""

    filename: str
    text: str
    rank: int
    tree: ast.Module | None = None
    flags: int = 0


def ship(answer: Any) -> Shipment:
    """The module source that rebuilds ``answer`` (a class or function defined at the top level of a
    cell or module), or :class:`CannotShip` saying why it cannot be."""
    name = getattr(answer, "__name__", None)
    if not isinstance(name, str) or not isinstance(answer, (type, types.FunctionType)):
        raise CannotShip(f"the check runs your code from its source, and {answer!r} is neither a class nor a "
                         f"function defined with 'class' or 'def'.")
    if getattr(answer, "__qualname__", name) != name:
        raise CannotShip(f"the check runs {name} from its source, in a fresh Python process, so {name} must be "
                         f"defined at the top level of a cell, not inside a function or another class. Move its "
                         f"'class' or 'def' statement to the top level of the cell.")
    return _Shipper(answer, name).shipment()


class _Shipper:
    def __init__(self, answer: Any, name: str) -> None:
        self.answer, self.name = answer, name
        self.namespace = _namespace_of(answer)
        self.module_name = self.namespace.get("__name__")
        self.units = _Units(self.namespace)
        self.imports: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self.statements: list[_Statement] = []
        self.provided: set[str] = set()
        self.missing: dict[str, str] = {}

    def shipment(self) -> Shipment:
        statement = self._definition(self.answer, self.name)
        if statement is None:
            raise CannotShip(f"the check runs {self.name} from its source, in a fresh Python process, and could not "
                             f"find the 'class' or 'def' statement that made it (was it made with type(...), exec, or "
                             f"in a cell whose text is gone?). Define {self.name} with a 'class' or 'def' statement "
                             f"at the top level of a cell, run that cell, then run the check.")
        self._add(statement)
        return Shipment(self.name, self._source(), dict(self.missing))

    # -- finding what each name needs --------------------------------------------------------------

    def _add(self, statement: _Statement) -> None:
        self.statements.append(statement)
        self.provided |= statement.binds
        for used in sorted(statement.uses):
            self._need(used)

    def _need(self, name: str) -> None:
        if name in self.provided or name in self.missing:
            return
        if name not in self.namespace:
            if not hasattr(builtins, name):
                self.missing[name] = "a name no cell defines"
            return
        value = self.namespace[name]
        self.provided.add(name)
        if isinstance(value, types.ModuleType):
            self.imports[name] = _import_module(name, value)
            return
        imported = self._importable(value)
        if imported is not None:
            self.imports[name] = f"{name} = {imported}"
            return
        if _plain(value):
            self.values[name] = f"{name} = {_literal(value)}"
            return
        statement = self._definition(value, name) if _defined_here(value, name, self.module_name) else None
        if statement is None:
            statement = self.units.last_binding(name)
        if statement is None:
            self.provided.discard(name)
            self.missing[name] = f"a {type(value).__name__} the check found no statement for"
            return
        self._add(statement)

    def _importable(self, value: Any) -> str | None:
        """``__pp_import('m').Q`` for an object of another, importable module; None otherwise."""
        module_name, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
        if not isinstance(module_name, str) or not isinstance(qualname, str) or "<" in qualname:
            return None
        if module_name in ("__main__", self.module_name) or module_name.startswith("__"):
            return None
        module = sys.modules.get(module_name)
        if module is None:
            return None
        found: Any = module
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if found is not value:
            return None
        return f"__pp_import({module_name!r}).{qualname}"

    def _definition(self, value: Any, name: str) -> _Statement | None:
        """The 'def' or 'class' statement that made ``value``, found through its code."""
        for code in _codes_of(value):
            statement = self.units.definition_at(code.co_filename, code.co_firstlineno, name, code.co_flags & _ANNOTATIONS)
            if statement is not None:
                return statement
        return self.units.last_binding(name, definitions_only=True)

    # -- writing the module ------------------------------------------------------------------------------

    def _source(self) -> str:
        lines = [
            "# The student's answer, rebuilt by a pocket_parallel check from the code that defined it.",
            "from importlib import import_module as __pp_import",
            "from ast import PyCF_ONLY_AST as __pp_tree, increment_lineno as __pp_shift",
            "def __pp_at(source, filename, line, flags):  # compiled as if at its place in the cell",
            "    tree = compile(source, filename, 'exec', flags | __pp_tree, True)",
            "    return compile(__pp_shift(tree, line - 1), filename, 'exec', flags, True)",
            *self.imports.values(),
            *self.values.values(),
            *(statement.code() for statement in _in_order(self.statements)),
        ]
        return "\n".join(lines) + "\n"


# -- where the student's code is ------------------------------------------------------------------


def _namespace_of(answer: Any) -> dict[str, Any]:
    """The globals the answer's code runs in: its module's dict (a notebook's user namespace)."""
    for code_owner in _functions_of(answer):
        return code_owner.__globals__
    module = sys.modules.get(getattr(answer, "__module__", "") or "")
    return vars(module) if module is not None else {}


def _functions_of(value: Any) -> Iterator[types.FunctionType]:
    """The Python functions that belong to ``value``: itself, or a class's own methods."""
    if isinstance(value, types.FunctionType):
        yield value
        return
    if not isinstance(value, type):
        return
    prefix = f"{value.__qualname__}."
    for attribute in vars(value).values():
        for function in _unwrapped(attribute):
            if function.__qualname__.startswith(prefix):  # defined in this class body, not borrowed
                yield function


def _unwrapped(attribute: Any) -> Iterator[types.FunctionType]:
    if isinstance(attribute, (staticmethod, classmethod)):
        attribute = attribute.__func__
    if isinstance(attribute, property):
        yield from (f for f in (attribute.fget, attribute.fset, attribute.fdel) if isinstance(f, types.FunctionType))
        return
    if isinstance(attribute, types.FunctionType):
        yield attribute


def _codes_of(value: Any) -> Iterator[types.CodeType]:
    for function in _functions_of(value):
        yield function.__code__


def _defined_here(value: Any, name: str, module_name: Any) -> bool:
    return (isinstance(value, (type, types.FunctionType)) and getattr(value, "__module__", None) == module_name
            and getattr(value, "__qualname__", None) == name)


class _Units:
    """The sources the student's code may come from, parsed once each."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.by_filename: dict[str, _Unit] = {}
        self.history: list[_Unit] = []
        cells = namespace.get("_ih")
        if isinstance(cells, list):
            for number, text in enumerate(cells):
                if isinstance(text, str) and text.strip():
                    self.history.append(_Unit(f"<cell {number}>", text, number))
        module_file = namespace.get("__file__")
        self.module_file = module_file if isinstance(module_file, str) else None

    def _unit(self, filename: str) -> _Unit | None:
        unit = self.by_filename.get(filename)
        if unit is None:
            lines = linecache.getlines(filename)
            if not lines:
                return None
            unit = self.by_filename[filename] = _Unit(filename, "".join(lines), len(self.history) + len(self.by_filename))
        return unit

    def definition_at(self, filename: str, line: int, name: str, flags: int) -> _Statement | None:
        """The top-level 'def' or 'class' ``name`` in ``filename`` that spans ``line``."""
        unit = self._unit(filename)
        if unit is None or _parsed(unit) is None:
            return None
        for node in _parsed(unit).body:  # type: ignore[union-attr]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if first <= line <= (node.end_lineno or node.lineno):
                    return _statement(unit, node, first, flags | unit.flags)
        return None

    def last_binding(self, name: str, *, definitions_only: bool = False) -> _Statement | None:
        """The last top-level statement that binds ``name``, in the cells run so far or the module's file."""
        candidates = list(reversed(self.history))
        if self.module_file is not None:
            unit = self._unit(self.module_file)
            if unit is not None:
                candidates.insert(0, unit)
        for unit in candidates:
            tree = _parsed(unit)
            if tree is None:
                continue
            for node in reversed(tree.body):
                if definitions_only and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    continue
                if name in _bound_by(node):
                    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
                    return _statement(unit, node, first, unit.flags)
        return None


def _parsed(unit: _Unit) -> ast.Module | None:
    if unit.tree is None:
        try:
            unit.tree = ast.parse(unit.text, unit.filename)
        except (SyntaxError, ValueError):
            return None
        if any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(alias.name == "annotations" for alias in node.names) for node in unit.tree.body):
            unit.flags = _ANNOTATIONS
    return unit.tree


def _bound_by(node: ast.stmt) -> set[str]:
    """The names a top-level statement binds (its targets, the names it defines or imports)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name.split(".")[0]) for alias in node.names if alias.name != "*"}
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
        targets = [node.target]
    found: set[str] = set()
    for target in targets:
        for part in ast.walk(target):
            if isinstance(part, ast.Name) and isinstance(part.ctx, ast.Store):
                found.add(part.id)
    return found


def _statement(unit: _Unit, node: ast.stmt, first: int, flags: int) -> _Statement:
    lines = unit.text.splitlines(keepends=True)
    source = "".join(lines[first - 1:node.end_lineno or node.lineno])
    uses, needs_first = _names_used(source, unit.filename)
    binds = frozenset(_bound_by(node))
    return _Statement(unit.filename, first, source, flags, (unit.rank, first), binds,
                      frozenset(uses - binds), frozenset(needs_first - binds))


def _names_used(source: str, filename: str) -> tuple[set[str], set[str]]:
    """(every global name the statement's code refers to, those it needs while the statement runs)."""
    try:
        table = symtable.symtable(source, filename, "exec")
    except (SyntaxError, ValueError):
        return set(), set()
    now = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_referenced()}
    uses = set(now)
    pending = [(child, child.get_type() == "class") for child in table.get_children()]
    while pending:
        scope, runs_now = pending.pop()
        for symbol in scope.get_symbols():
            if symbol.is_global() and (symbol.is_referenced() or symbol.is_assigned()):
                uses.add(symbol.get_name())
                if runs_now:
                    now.add(symbol.get_name())
        pending.extend((child, runs_now and child.get_type() == "class") for child in scope.get_children())
    return uses, now


def _in_order(statements: list[_Statement]) -> list[_Statement]:
    """The statements so that each comes after those that bind what it needs while it runs
    (a base class before its subclass), otherwise in the order they were written."""
    remaining = sorted(statements, key=lambda s: s.rank)
    ordered: list[_Statement] = []
    bound: set[str] = set()
    providers = {name for s in remaining for name in s.binds}
    while remaining:
        ready = next((s for s in remaining if not ((s.needs_first & providers) - bound)), remaining[0])
        remaining.remove(ready)
        ordered.append(ready)
        bound |= ready.binds
    return ordered


# -- imports and plain values ---------------------------------------------------------------------------


def _import_module(name: str, module: types.ModuleType) -> str:
    return f"{name} = __pp_import({module.__name__!r})"


def _plain(value: Any, budget: list[int] | None = None) -> bool:
    """Whether ``value`` is made only of numbers, strings, bytes, None and the built-in containers."""
    budget = budget if budget is not None else [_PLAIN_LIMIT]
    budget[0] -= 1
    if budget[0] < 0:
        return False
    kind = type(value)
    if kind in _ATOMS:
        return True
    if kind in (list, tuple, set, frozenset):
        return all(_plain(item, budget) for item in value)
    if kind is dict:
        return all(_plain(key, budget) and _plain(item, budget) for key, item in value.items())
    return False


def _literal(value: Any) -> str:
    """Source that makes ``value``: its repr when that reads back exactly, else a pickle of it."""
    text = repr(value)
    try:
        if _same(ast.literal_eval(text), value):
            return text
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    return f"__pp_import('pickle').loads({pickle.dumps(value)!r})"


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)
