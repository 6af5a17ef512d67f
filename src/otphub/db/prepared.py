"""Statements compiled once, to run straight through the driver.

Through SQLAlchemy a statement cost 20 to 30 us of bookkeeping, as much as SQLite's own
work, so the hot read (``Database.one``), ``run``'s statements (on SQLite) and BEGIN/COMMIT
go to the driver directly, compiled once (``HotStatements``), whenever that gives exactly
what SQLAlchemy would. ``Rows`` is what ``run`` returns on either path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, Executable, Select
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util.typing import TupleAny, Unpack


class HotStatements:
    """The hot path's statements, compiled once per dialect to SQL text with positional
    parameters, so that each execution is one call into the driver: SQLAlchemy's
    per-execution bookkeeping costs more than the statement itself."""

    def __init__(self, dialect: Any) -> None:
        self._dialect = dialect
        self._compiled: dict[int, _Prepared] = {}
        # Each entry keeps its statement: the id in the key is then never another's.
        self._prepared: dict[tuple[int, tuple[str, ...]], tuple[object, _Prepared | None]] = {}
        self._keep_alive: list[object] = []  # the ids in _compiled stay valid while cached

    def bind(
        self, statement: Select[Unpack[TupleAny]], params: dict[str, Any]
    ) -> tuple[str, list[Any]]:
        compiled = self._compiled.get(id(statement))
        if compiled is None:
            done = statement.compile(dialect=self._dialect)
            names = tuple(done.positiontup or ())
            fixed = _literals(done, names)
            compiled = (str(done), names, fixed)
            self._compiled[id(statement)] = compiled
            self._keep_alive.append(statement)
        sql, names, fixed = compiled
        return sql, _values(names, fixed, params)

    def prepare(
        self, statement: Executable, params: dict[str, Any]
    ) -> tuple[str, list[Any]] | None:
        """Like ``bind``, for any statement run with these parameter names (an INSERT's or
        UPDATE's columns follow them, as in ``Connection.execute``). ``None`` when the
        driver alone would not do exactly what SQLAlchemy does: column defaults computed
        in Python, lists expanded into ``IN``, values converted on the way in or out."""
        key = (id(statement), tuple(sorted(params)))
        entry = self._prepared.get(key)
        if entry is None:
            if len(self._prepared) >= _MAX_PREPARED:
                # Statements of purchases are built per filter shape, and one part of a
                # shape (the number of excluded prefixes) is the client's to choose.
                self._prepared.clear()
            entry = self._prepared[key] = (statement, _prepare(statement, key[1], self._dialect))
        prepared = entry[1]
        if prepared is None:
            return None
        sql, names, fixed = prepared
        return sql, _values(names, fixed, params)


_Prepared = tuple[str, tuple[str, ...], dict[str, Any]]


def _literals(compiled: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Literals in a statement (``owner_kind = 'customer'``, a LIMIT) became parameters of
    their own when it was compiled: their values."""
    return {n: compiled.binds[n].value for n in names if not compiled.binds[n].required}


def _values(names: tuple[str, ...], fixed: dict[str, Any], params: dict[str, Any]) -> list[Any]:
    """The positional values of a compiled statement: the caller's, else the statement's
    own literals (a LIMIT, ``owner_kind = 'customer'``)."""
    return [params[name] if name in params else fixed[name] for name in names]


_MAX_PREPARED = 2048


def _prepare(statement: Executable, keys: tuple[str, ...], dialect: Any) -> _Prepared | None:
    if not isinstance(statement, ClauseElement):
        return None
    done: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    if done.insert_prefetch or done.update_prefetch:
        return None
    names = tuple(done.positiontup or ())
    binds = [done.binds[n] for n in names]
    if any(b.expanding or b.type.dialect_impl(dialect).bind_processor(dialect) for b in binds):
        return None
    columns = getattr(statement, "exported_columns", ())
    if any(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns):
        return None
    fixed = _literals(done, names)
    return str(done), names, fixed


@dataclass(frozen=True, slots=True)
class Rows:
    """What ``run`` returns: the rows (read by position) and the count of rows changed."""

    rows: Sequence[Sequence[Any]]
    rowcount: int

    @classmethod
    def of(cls, result: CursorResult[Unpack[TupleAny]]) -> Rows:
        """From a statement run through SQLAlchemy."""
        return cls(result.all() if result.returns_rows else (), result.rowcount)

    def first(self) -> Sequence[Any] | None:
        return self.rows[0] if self.rows else None

    def one(self) -> Sequence[Any]:
        if len(self.rows) != 1:
            raise LookupError(f"expected one row, got {len(self.rows)}")
        return self.rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None
