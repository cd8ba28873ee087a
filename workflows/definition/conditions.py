"""Route conditions: the small, declarative comparison language of a route's ``if``.

    if = "age >= 18 and marital_status in ['married', 'single']"

A condition compares caller-data fields with literals. It is parsed by the tiny recursive-descent
parser below (never ``eval``), at load time, and type-checked against the declared fields, so a
typo or a number compared with text is a ``validate`` error, not a surprise during a call.

Grammar (keywords are lowercase; ``#`` has no meaning)::

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand
                           | ["not"] "in" "[" literal ("," literal)* [","] "]")?
    operand    := field | literal | "(" or ")"
    literal    := number | 'text' | "text" | true | false

A bare field is a test of a ``boolean`` field. At least one side of a comparison is a field.

Evaluation is three-valued: a comparison with a field not recorded yet is *unknown*, ``not``
keeps unknown unknown, ``and``/``or`` follow Kleene's rules, and a route whose condition is not
*true* is not offered. So ``not (age < 18)`` is not met before the age is known, whichever way
the condition is written.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

MAX_CONDITION = 500
"""Characters a condition may hold."""
MAX_DEPTH = 20
"""Parentheses and ``not``s nested deeper than this are refused (no recursion blow-up)."""

FieldType = str
"""A field's declared ``type`` (``string`` unless the field says otherwise)."""

NUMERIC = frozenset({"integer", "number"})
ORDERED = NUMERIC | {"date", "time"}
TEXTUAL = frozenset({"string", "enum", "date", "time", "email", "phone", "address", "name"})

Op = Literal["==", "!=", "<", "<=", ">", ">="]
Value = str | int | float | bool


class ConditionError(ValueError):
    """A condition that does not parse or does not type-check; the message says where and why."""


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class FieldRef:
    name: str


@dataclass(frozen=True)
class Literal_:
    value: Value


Operand = FieldRef | Literal_


@dataclass(frozen=True)
class Compare:
    op: Op
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Member:
    field: FieldRef
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class Truth:
    """A bare (boolean) field."""

    field: FieldRef


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


Node = Compare | Member | Truth | Not | And | Or


# --------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?)
      | (?P<string>'[^'\\]*'|"[^"\\]*")
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>==|!=|<=|>=|<|>)
      | (?P<punct>[()\[\],])
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            column = len(text) - len(text[position:].lstrip()) + 1
            shown = text[column - 1 : column + 9]
            if shown[:1] in "'\"":
                raise ConditionError(f"at column {column}: a text literal is not closed")
            raise ConditionError(
                f"at column {column}: unexpected {shown!r} (allowed: field names, numbers, "
                "'text', true, false, == != < <= > >=, and, or, not, in [...], parentheses)"
            )
        group = match.lastgroup or ""
        value = match.group(group)
        keyword = group == "name" and value in _KEYWORDS
        kind = value if keyword or group == "punct" else group
        tokens.append(_Token(kind, value, match.start(group) + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def take(self, kind: str) -> _Token | None:
        token = self.current
        if token.kind == kind:
            self.index += 1
            return token
        return None

    def expect(self, kind: str, what: str) -> _Token:
        token = self.take(kind)
        if token is None:
            raise self.error(f"expected {what}")
        return token

    def error(self, message: str) -> ConditionError:
        token = self.current
        found = "the end" if token.kind == "end" else repr(token.text)
        return ConditionError(f"at column {token.column}: {message}, found {found}")

    def parse(self) -> Node:
        if self.current.kind == "end":
            raise ConditionError("the condition is empty")
        node = self.or_()
        if self.current.kind != "end":
            raise self.error("expected 'and', 'or' or the end of the condition")
        return node

    def nested(self, parse: Callable[[], Node]) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested more than {MAX_DEPTH} levels deep")
        try:
            return parse()
        finally:
            self.depth -= 1

    def or_(self) -> Node:
        node = self.and_()
        while self.take("or"):
            node = Or(node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.take("and"):
            node = And(node, self.not_())
        return node

    def not_(self) -> Node:
        if self.take("not"):
            return Not(self.nested(self.not_))
        return self.comparison()

    def comparison(self) -> Node:
        if self.take("("):
            node = self.nested(self.or_)
            self.expect(")", "')'")
            return node
        left = self.operand()
        op = self.take("op")
        if op is not None:
            right = self.operand()
            if isinstance(left, Literal_) and isinstance(right, Literal_):
                raise ConditionError(
                    f"at column {op.column}: a comparison needs a field on one side "
                    f"({left.value!r} {op.text} {right.value!r} compares two literals)"
                )
            return Compare(op.text, left, right)  # type: ignore[arg-type]
        negated = False
        if self.current.kind == "not" and self.tokens[self.index + 1].kind == "in":
            self.index += 1
            negated = True
        if self.take("in"):
            if not isinstance(left, FieldRef):
                raise self.error("'in' needs a field on its left")
            return Member(left, self.literal_list(), negated)
        if isinstance(left, FieldRef):
            return Truth(left)
        raise self.error("expected a comparison (== != < <= > >= or in) after the literal")

    def operand(self) -> Operand:
        name = self.take("name")
        if name is not None:
            return FieldRef(name.text)
        return Literal_(self.literal())

    def literal(self) -> Value:
        token = self.current
        if self.take("number"):
            return float(token.text) if "." in token.text else int(token.text)
        if self.take("string"):
            return token.text[1:-1]
        if self.take("true"):
            return True
        if self.take("false"):
            return False
        raise self.error("expected a field name or a value (a number, 'text', true or false)")

    def literal_list(self) -> tuple[Value, ...]:
        self.expect("[", "'[' after 'in'")
        values: list[Value] = []
        while True:
            values.append(self.literal())
            if not self.take(","):
                break
            if self.current.kind == "]":
                break
        self.expect("]", "',' or ']'")
        return tuple(values)


def parse_condition(text: str) -> Node:
    """The syntax tree of ``text``; :class:`ConditionError` saying where it goes wrong."""
    if len(text) > MAX_CONDITION:
        raise ConditionError(f"a condition holds at most {MAX_CONDITION} characters")
    return _Parser(text).parse()


# --------------------------------------------------------------------------- checks


def fields_of(node: Node) -> list[str]:
    """The field names a condition reads, in order, once each."""
    found: list[str] = []

    def visit(part: Node | Operand) -> None:
        if isinstance(part, FieldRef):
            if part.name not in found:
                found.append(part.name)
        elif isinstance(part, Compare):
            visit(part.left)
            visit(part.right)
        elif isinstance(part, Member | Truth):
            visit(part.field)
        elif isinstance(part, Not):
            visit(part.operand)
        elif isinstance(part, And | Or):
            visit(part.left)
            visit(part.right)

    visit(node)
    return found


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _kind(value: Value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "text"


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")


def _literal_fits(
    field: str, ftype: FieldType, value: Value, choices: tuple[str, ...]
) -> str | None:
    """Why ``value`` cannot be compared with the field; None when it can."""
    kind = _kind(value)
    if ftype in NUMERIC:
        if kind != "number":
            return f"'{field}' is {_a(ftype)} field: compare it with a number, not {value!r}"
        if ftype == "integer" and isinstance(value, float) and not value.is_integer():
            return f"'{field}' is an integer field: {value} is not a whole number"
        return None
    if ftype == "boolean":
        if kind != "boolean":
            return f"'{field}' is a boolean field: compare it with true or false, not {value!r}"
        return None
    if ftype == "list":
        return f"'{field}' is a list field: lists cannot be compared (yet)"
    if kind != "text":
        shown = "true/false" if kind == "boolean" else str(value)
        hint = (
            f' (or declare [caller_data.{field}] type = "integer" or "number")'
            if kind == "number"
            else ""
        )
        return f"'{field}' is {_a(ftype)} field: compare it with quoted text, not {shown}{hint}"
    assert isinstance(value, str)
    if ftype == "date" and not _DATE.match(value):
        return f"'{field}' is a date field: write the date as 'YYYY-MM-DD', not {value!r}"
    if ftype == "time" and not _TIME.match(value):
        return f"'{field}' is a time field: write the time as 'HH:MM', not {value!r}"
    if ftype == "enum" and choices and value not in choices:
        close = difflib.get_close_matches(value, list(choices), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"choices: {', '.join(choices)}"
        return f"{value!r} is not a choice of '{field}' ({hint})"
    return None


def check_condition(
    node: Node,
    types: Mapping[str, FieldType],
    choices: Mapping[str, tuple[str, ...]] | None = None,
) -> list[str]:
    """Every type problem of a parsed condition against the declared fields (name → type)."""
    problems: list[str] = []
    choices = choices or {}

    def unknown(name: str) -> str:
        close = difflib.get_close_matches(name, list(types), n=1)
        if close:
            return f"unknown field '{name}' (did you mean '{close[0]}'?)"
        return f"unknown field '{name}' (declared fields: {', '.join(sorted(types)) or 'none'})"

    def visit(part: Node) -> None:
        if isinstance(part, Not):
            visit(part.operand)
        elif isinstance(part, And | Or):
            visit(part.left)
            visit(part.right)
        elif isinstance(part, Truth):
            name = part.field.name
            if name not in types:
                problems.append(unknown(name))
            elif types[name] != "boolean":
                problems.append(
                    f"'{name}' alone is a test of a boolean field, and '{name}' is a "
                    f"{types[name]} field: compare it (e.g. {name} == ...)"
                )
        elif isinstance(part, Member):
            name = part.field.name
            if name not in types:
                problems.append(unknown(name))
                return
            for value in part.values:
                problem = _literal_fits(name, types[name], value, choices.get(name, ()))
                if problem:
                    problems.append(problem)
        elif isinstance(part, Compare):
            sides = [part.left, part.right]
            fields = [side for side in sides if isinstance(side, FieldRef)]
            for ref in fields:
                if ref.name not in types:
                    problems.append(unknown(ref.name))
            if any(ref.name not in types for ref in fields):
                return
            if len(fields) == 2:
                a, b = (types[ref.name] for ref in fields)
                if (a in NUMERIC) != (b in NUMERIC) or (a not in NUMERIC and a != b):
                    problems.append(
                        f"'{fields[0].name}' ({a}) and '{fields[1].name}' ({b}) cannot be compared"
                    )
                elif part.op not in ("==", "!=") and a not in ORDERED:
                    problems.append(
                        f"'{part.op}' needs number, date or time fields ('{fields[0].name}' is {a})"
                    )
                return
            ref = fields[0]
            literal = part.right if isinstance(part.right, Literal_) else part.left
            assert isinstance(literal, Literal_)
            ftype = types[ref.name]
            problem = _literal_fits(ref.name, ftype, literal.value, choices.get(ref.name, ()))
            if problem:
                problems.append(problem)
            elif part.op not in ("==", "!=") and ftype not in ORDERED:
                problems.append(
                    f"'{part.op}' needs a number, date or time field; '{ref.name}' is a {ftype} "
                    "field (use == or !=, or in [...])"
                )

    visit(node)
    return problems


# --------------------------------------------------------------------------- evaluation

Known = bool | None
"""Three-valued truth: None is *unknown* (a field not recorded yet)."""


def _coerce(value: object, ftype: FieldType) -> object:
    """A stored value in the form its type compares in (values stored as text before typing)."""
    if ftype in NUMERIC and isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    if ftype == "boolean" and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes"):
            return True
        if lowered in ("false", "no"):
            return False
        return None
    if isinstance(value, str) and ftype in TEXTUAL and ftype not in ("date", "time"):
        return value.strip().casefold()
    return value


def _same_kind(a: object, b: object) -> bool:
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numeric) and isinstance(b, numeric):
        return True
    return isinstance(a, str) and isinstance(b, str)


def _compare(op: Op, a: object, b: object) -> Known:
    if a is None or b is None or not _same_kind(a, b):
        return None
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    try:
        if op == "<":
            return a < b  # type: ignore[operator]
        if op == "<=":
            return a <= b  # type: ignore[operator]
        if op == ">":
            return a > b  # type: ignore[operator]
        return a >= b  # type: ignore[operator]
    except TypeError:
        return None


def evaluate(
    node: Node, values: Mapping[str, object], types: Mapping[str, FieldType] | None = None
) -> Known:
    """The condition's truth for these caller data: True, False or None (unknown)."""
    types = types or {}

    def operand(part: Operand, ftype: FieldType) -> object:
        if isinstance(part, FieldRef):
            raw = values.get(part.name)
            return None if raw is None else _coerce(raw, types.get(part.name, "string"))
        value = part.value
        if isinstance(value, str) and ftype in TEXTUAL and ftype not in ("date", "time"):
            return value.casefold()
        return value

    def visit(part: Node) -> Known:
        if isinstance(part, Not):
            inner = visit(part.operand)
            return None if inner is None else not inner
        if isinstance(part, And):
            left, right = visit(part.left), visit(part.right)
            if left is False or right is False:
                return False
            return None if left is None or right is None else True
        if isinstance(part, Or):
            left, right = visit(part.left), visit(part.right)
            if left is True or right is True:
                return True
            return None if left is None or right is None else False
        if isinstance(part, Truth):
            value = operand(part.field, "boolean")
            return value if isinstance(value, bool) else None
        if isinstance(part, Member):
            ftype = types.get(part.field.name, "string")
            value = operand(part.field, ftype)
            if value is None:
                return None
            hit = any(_compare("==", value, operand(Literal_(v), ftype)) for v in part.values)
            return not hit if part.negated else hit
        field = part.left if isinstance(part.left, FieldRef) else part.right
        assert isinstance(field, FieldRef)
        ftype = types.get(field.name, "string")
        return _compare(part.op, operand(part.left, ftype), operand(part.right, ftype))

    return visit(node)


def holds(
    node: Node, values: Mapping[str, object], types: Mapping[str, FieldType] | None = None
) -> bool:
    """True only when the condition is known to be true."""
    return evaluate(node, values, types) is True
