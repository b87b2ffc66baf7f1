"""The AIP-160 filter grammar: precedence, negation, quoting, limits, and compiled SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects import postgresql

from imgtag_common.errors import InvalidArgument
from imgtag_common.filtering import (
    MAX_TERMS,
    And,
    Comparison,
    Not,
    Or,
    compile_filter,
    enum_field,
    integer_field,
    parse_filter,
    text_field,
    timestamp_field,
)


def c(field: str, op: str, value: str) -> Comparison:
    return Comparison(field, op, value, 0)


def strip_positions(expr):
    if isinstance(expr, Comparison):
        return c(expr.field, expr.op, expr.value)
    if isinstance(expr, Not):
        return Not(strip_positions(expr.operand))
    return type(expr)(tuple(strip_positions(e) for e in expr.operands))


def test_and_binds_tighter_than_or() -> None:
    parsed = strip_positions(parse_filter('a = 1 OR b = "x y" AND c != 3'))
    assert parsed == Or((c("a", "=", "1"), And((c("b", "=", "x y"), c("c", "!=", "3")))))


def test_terms_side_by_side_are_anded_and_parentheses_group() -> None:
    parsed = strip_positions(parse_filter('(a = 1 OR a = 2) b:"cat"'))
    assert parsed == And((Or((c("a", "=", "1"), c("a", "=", "2"))), c("b", ":", "cat")))


def test_not_and_minus_negate() -> None:
    assert strip_positions(parse_filter("NOT a = 1")) == Not(c("a", "=", "1"))
    assert strip_positions(parse_filter("-a = 1")) == Not(c("a", "=", "1"))


def test_quoted_values_keep_spaces_escapes_and_unicode() -> None:
    parsed = parse_filter(r'tag = "海边 \"日落\""')
    assert parsed == Comparison("tag", "=", '海边 "日落"', 0)


def test_empty_filter_is_none() -> None:
    assert parse_filter("   ") is None


@pytest.mark.parametrize(
    "bad",
    ["a =", "= 1", "a 1", "(a = 1", "a = 1)", 'a = "open', "a = 1 OR", "a == 1", "AND a = 1", "a = (1)"],
)
def test_malformed_filters_are_invalid_argument(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_filter(bad)
    assert caught.value.reason == "INVALID_FILTER"


def test_size_limits() -> None:
    with pytest.raises(InvalidArgument):
        parse_filter(" OR ".join(["a = 1"] * (MAX_TERMS + 1)))
    with pytest.raises(InvalidArgument):
        parse_filter("(" * 40 + "a = 1" + ")" * 40)
    with pytest.raises(InvalidArgument):
        parse_filter("a = " + "x" * 3000)


TABLE = Table(
    "t",
    MetaData(),
    Column("name", Text),
    Column("state", Text),
    Column("size", Integer),
    Column("created", DateTime(timezone=True)),
)
FIELDS = {
    "name": text_field(TABLE.c.name, "name"),
    "state": enum_field(TABLE.c.state, "state", {"ACTIVE": "active", "PENDING": "pending"}),
    "size": integer_field(TABLE.c.size, "size"),
    "created": timestamp_field(TABLE.c.created, "created"),
}


def sql(text: str) -> str:
    expr = parse_filter(text)
    assert expr is not None
    compiled = compile_filter(expr, FIELDS).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    return str(compiled)


def test_compiles_to_sql_with_mapped_values() -> None:
    assert sql("state = PENDING AND size >= 3") == "t.state = 'pending' AND t.size >= 3"
    assert sql('name:"50%_off"') == "t.name ILIKE '%%50\\%%\\_off%%' ESCAPE '\\'"


@pytest.mark.parametrize(
    "bad",
    [
        "owner = x",
        "state = BOGUS",
        "size = big",
        "size : 3",
        'created > "yesterday"',
        'created > "2024-01-01T00:00:00"',
    ],
)
def test_unknown_fields_values_and_operators_are_invalid(bad: str) -> None:
    expr = parse_filter(bad)
    with pytest.raises(InvalidArgument):
        compile_filter(expr, FIELDS)
