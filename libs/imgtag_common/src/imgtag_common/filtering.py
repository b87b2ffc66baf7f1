"""List filters in the AIP-160 grammar every ImgTag List/Search RPC documents, parsed into a small
syntax tree and compiled to SQL against a whitelist of fields.

    expr := or ; or := and {"OR" and} ; and := unary {["AND"] unary}
    unary := ("NOT" | "-") unary | "(" expr ")" | field op value
    op := "=" | "!=" | "<" | "<=" | ">" | ">=" | ":"
    value := "quoted string" (\\" and \\\\ escapes) | bare word

AND binds tighter than OR. Only whitelisted fields and operators compile; anything else is
INVALID_ARGUMENT, reason INVALID_FILTER, naming the position. Size limits keep a hostile filter
from becoming an expensive query."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, not_, or_
from sqlalchemy.sql.elements import ColumnClause

from imgtag_common.errors import InvalidArgument

COMPARISON_OPS = ("<=", ">=", "!=", "=", "<", ">", ":")
MAX_FILTER_LENGTH = 2000
MAX_TERMS = 64
MAX_DEPTH = 16


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: str
    position: int


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Comparison | Not | And | Or


def invalid(message: str, position: int | None = None) -> InvalidArgument:
    where = f" (at character {position + 1})" if position is not None else ""
    return InvalidArgument(f"filter: {message}{where}", reason="INVALID_FILTER")


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) |
        (?P<op><=|>=|!=|=|<|>|:) |
        (?P<string>"(?:[^"\\]|\\.)*") |
        (?P<word>[^\s()"=!<>:]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokens(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise invalid(f"unexpected {text[pos:].lstrip()[:1]!r}", pos)
        kind = match.lastgroup or ""
        value = match.group(kind)
        tokens.append(_Token(kind, value, match.start(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._i = 0
        self._terms = 0

    def _peek(self) -> _Token | None:
        return self._tokens[self._i] if self._i < len(self._tokens) else None

    def _take(self) -> _Token:
        token = self._peek()
        if token is None:
            raise invalid("unexpected end")
        self._i += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "word" and token.text == word:
            self._i += 1
            return True
        return False

    def parse(self) -> Expr:
        expr = self._or(0)
        token = self._peek()
        if token is not None:
            raise invalid(f"unexpected {token.text!r}", token.position)
        return expr

    def _or(self, depth: int) -> Expr:
        operands = [self._and(depth)]
        while self._keyword("OR"):
            operands.append(self._and(depth))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self, depth: int) -> Expr:
        operands = [self._unary(depth)]
        while True:
            if self._keyword("AND"):
                operands.append(self._unary(depth))
                continue
            token = self._peek()
            # AIP-160: terms side by side are ANDed.
            if token is None or token.kind == "rparen" or (token.kind == "word" and token.text == "OR"):
                break
            operands.append(self._unary(depth))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _unary(self, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise invalid(f"nested deeper than {MAX_DEPTH} levels")
        token = self._peek()
        if token is None:
            raise invalid("unexpected end")
        if self._keyword("NOT"):
            return Not(self._unary(depth + 1))
        if token.kind == "word" and token.text.startswith("-") and len(token.text) > 1:
            # "-field = x": negation written as a prefix of the field name.
            self._tokens[self._i] = _Token("word", token.text[1:], token.position + 1)
            return Not(self._unary(depth + 1))
        if token.kind == "lparen":
            self._take()
            inner = self._or(depth + 1)
            closing = self._take()
            if closing.kind != "rparen":
                raise invalid("expected ')'", closing.position)
            return inner
        return self._comparison()

    def _comparison(self) -> Comparison:
        field = self._take()
        if field.kind != "word":
            raise invalid(f"expected a field name, got {field.text!r}", field.position)
        op = self._take()
        if op.kind != "op":
            raise invalid(f"expected an operator after {field.text!r}", op.position)
        value = self._take()
        if value.kind == "string":
            text = re.sub(r"\\(.)", r"\1", value.text[1:-1])
        elif value.kind == "word":
            text = value.text
        else:
            raise invalid(f"expected a value after {field.text} {op.text}", value.position)
        self._terms += 1
        if self._terms > MAX_TERMS:
            raise invalid(f"more than {MAX_TERMS} conditions")
        return Comparison(field.text, op.text, text, field.position)


def parse_filter(text: str) -> Expr | None:
    """The syntax tree of `text`, or None for an empty filter."""
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid(f"longer than {MAX_FILTER_LENGTH} characters")
    if not text.strip():
        return None
    return _Parser(_tokens(text)).parse()


# ---------------------------------------------------------------------------- compiling to SQL

# A field turns (op, value, position) into a SQL condition, or raises `invalid`.
FieldCompiler = Callable[[str, str, int], ColumnElement[bool]]


def compile_filter(
    expr: Expr,
    fields: Mapping[str, FieldCompiler],
    keyed: Mapping[str, Callable[[str], FieldCompiler]] | None = None,
) -> ColumnElement[bool]:
    """SQL for `expr`. `keyed` holds field families like "labels" for `labels.<key> = ...`."""
    if isinstance(expr, And):
        return and_(*(compile_filter(e, fields, keyed) for e in expr.operands))
    if isinstance(expr, Or):
        return or_(*(compile_filter(e, fields, keyed) for e in expr.operands))
    if isinstance(expr, Not):
        return not_(compile_filter(expr.operand, fields, keyed))
    compiler = fields.get(expr.field)
    family, _, key = expr.field.partition(".")
    if compiler is None and key and keyed and family in keyed:
        compiler = keyed[family](key)
    if compiler is None:
        known = sorted([*fields, *(f"{k}.<key>" for k in keyed or {})])
        raise invalid(f"unknown field {expr.field!r} (known: {', '.join(known)})", expr.position)
    return compiler(expr.op, expr.value, expr.position)


def _require_op(op: str, allowed: tuple[str, ...], field: str, position: int) -> None:
    if op not in allowed:
        raise invalid(f"{field} supports {' '.join(allowed)}, not {op}", position)


def text_field(column: ColumnClause, name: str) -> FieldCompiler:
    """=, != compare exactly (case-insensitively); ':' is a case-insensitive substring match."""

    def build(op: str, value: str, position: int) -> ColumnElement[bool]:
        _require_op(op, ("=", "!=", ":"), name, position)
        if op == ":":
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return column.ilike(f"%{escaped}%", escape="\\")
        condition = column.ilike(value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"), escape="\\")
        return condition if op == "=" else not_(condition)

    return build


def enum_field(column: ColumnClause, name: str, values: Mapping[str, str]) -> FieldCompiler:
    """`state = ACTIVE`: contract names mapped to stored values."""

    def build(op: str, value: str, position: int) -> ColumnElement[bool]:
        _require_op(op, ("=", "!="), name, position)
        stored = values.get(value.upper())
        if stored is None:
            raise invalid(f"{name} is one of {', '.join(sorted(values))}, not {value!r}", position)
        return column == stored if op == "=" else column != stored

    return build


def _compare(column: ColumnClause, op: str, value: object) -> ColumnElement[bool]:
    return {
        "=": column == value,
        "!=": column != value,
        "<": column < value,
        "<=": column <= value,
        ">": column > value,
        ">=": column >= value,
    }[op]


def timestamp_field(column: ColumnClause, name: str) -> FieldCompiler:
    """RFC 3339 timestamps with a time zone, e.g. create_time >= "2024-01-01T00:00:00Z"."""

    def build(op: str, value: str, position: int) -> ColumnElement[bool]:
        _require_op(op, ("=", "!=", "<", "<=", ">", ">="), name, position)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as error:
            raise invalid(f"{name} needs an RFC 3339 timestamp like 2024-01-01T00:00:00Z", position) from error
        if moment.tzinfo is None:
            raise invalid(f"{name} needs a time zone (e.g. a trailing Z)", position)
        return _compare(column, op, moment)

    return build


def integer_field(column: ColumnClause, name: str) -> FieldCompiler:
    def build(op: str, value: str, position: int) -> ColumnElement[bool]:
        _require_op(op, ("=", "!=", "<", "<=", ">", ">="), name, position)
        try:
            number = int(value)
        except ValueError as error:
            raise invalid(f"{name} needs a whole number", position) from error
        if abs(number) > 2**62:
            raise invalid(f"{name} is out of range", position)
        return _compare(column, op, number)

    return build


def boolean_field(column: ColumnClause, name: str) -> FieldCompiler:
    def build(op: str, value: str, position: int) -> ColumnElement[bool]:
        _require_op(op, ("=", "!="), name, position)
        if value.lower() not in ("true", "false"):
            raise invalid(f"{name} is true or false", position)
        flag = value.lower() == "true"
        return column.is_(flag) if op == "=" else column.is_not(flag)

    return build
