"""Typed caller data: what each ``[caller_data.<field>] type`` accepts, and how a value is normalised.

Pure functions, no LiveKit and no I/O, so the record tool, the offline brain, the resume check and
the tests all share one definition of "a valid party size":

- :func:`normalise` turns what a model or a caller gave (``"4"``, ``"four"``, ``4``,
  ``"March 9th 2014"``, ``"wed"``) into the stored value with its JSON type (``4``,
  ``"2014-03-09"``, ``"married"``), or raises :class:`FieldValueError` whose message says what
  the value must be ("the party size must be between 1 and 12"), in words a model can repeat to
  the caller.
- :func:`find_value` looks for a value of the type inside an utterance ("a table for four on
  March 9th 2014 please"): the offline brain's deterministic extraction.
- :func:`as_text` is how a stored value is spoken and shown (``4`` → ``"4"``, ``True`` → ``"yes"``).

Every function takes the field's rules through the :class:`FieldRules` protocol
(:class:`~frontdesk.workflows.definition.schema.CallerField` satisfies it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, get_args

if TYPE_CHECKING:
    from frontdesk.workflows.definition.patterns import Pattern

FieldType = Literal[
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "time",
    "enum",
    "list",
    "email",
    "phone",
    "address",
    "dob",
    "name",
]
"""Every ``type`` a caller-data field may declare ("string" by default)."""

FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
ItemType = Literal[
    "string", "integer", "number", "boolean", "date", "time", "enum", "email", "phone", "name"
]
"""The ``items`` of a ``list`` field: any scalar type."""
ITEM_TYPES: tuple[str, ...] = get_args(ItemType)

TEXT_TYPES = frozenset(
    {"string", "date", "time", "enum", "email", "phone", "address", "dob", "name"}
)
"""Types whose stored value is a JSON string (the ones that may be ``sensitive``: only strings
are sealed at rest)."""
PATTERN_TYPES = frozenset({"string", "email", "phone", "address", "name"})
"""Types that may also declare a ``pattern``."""
BOUNDED_TYPES = frozenset({"integer", "number", "list"})
"""Types that take ``min`` / ``max`` (a list: its number of items)."""

Scalar = str | int | float | bool
FieldValue = Scalar | list[Scalar]
"""A stored caller-data value: a JSON string, number, boolean or list of those."""

MAX_TEXT = 200
"""Characters a text value may hold: caller data are short facts, never whole utterances."""
MAX_LIST_ITEMS = 50


class FieldValueError(ValueError):
    """A value the field refuses; ``str(error)`` says what the value must be."""


class FieldRules(Protocol):
    """What :func:`normalise` reads of a field (a ``CallerField``)."""

    @property
    def type(self) -> FieldType: ...
    @property
    def choices(self) -> tuple[str, ...]: ...
    @property
    def synonyms(self) -> Mapping[str, Sequence[str]]: ...
    @property
    def min(self) -> float | None: ...
    @property
    def max(self) -> float | None: ...
    @property
    def items(self) -> ItemType | None: ...
    @property
    def regex(self) -> Pattern | None: ...


# --------------------------------------------------------------------------- numbers

_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_NUMBER_WORDS = {*_UNITS, *_TENS, *_SCALES, "a", "and", "dozen"}
_WORD = re.compile(r"[a-z]+|\d+(?:[.,]\d+)*|\S", re.IGNORECASE)
_DIGITS = re.compile(
    r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])-?\d+(?:\.\d+)?(?:k\b)?"
)


def _words_value(words: Sequence[str]) -> int | None:
    """``["twenty", "one"]`` → 21, ``["three", "hundred", "thousand"]`` → 300000; else None."""
    total = current = 0
    seen = False
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "dozen":
            current = (current or 1) * 12
        elif word == "hundred":
            current = (current or 1) * 100
        elif word in ("thousand", "million"):
            total += (current or 1) * _SCALES[word]
            current = 0
        elif word == "a":
            current = current or 0
            continue
        elif word == "and":
            continue
        else:
            return None
        seen = True
    return total + current if seen else None


def _number_spans(text: str) -> list[tuple[int, int, float]]:
    """Every number in ``text`` (digits or number words), as (start, end, value), in order."""
    found: list[tuple[int, int, float]] = []
    for match in _DIGITS.finditer(text):
        raw = match.group(0).replace(",", "")
        scale = 1000 if raw.lower().endswith("k") else 1
        number = float(raw.rstrip("kK")) * scale
        found.append((match.start(), match.end(), number))
    words = [(m.start(), m.end(), m.group(0).lower()) for m in re.finditer(r"[A-Za-z]+", text)]
    index = 0
    while index < len(words):
        run: list[tuple[int, int, str]] = []
        while index < len(words) and words[index][2].replace("-", "") in _NUMBER_WORDS:
            run.append(words[index])
            index += 1
        # a run may not start or end with a filler word ("a", "and")
        while run and run[0][2] in ("a", "and"):
            run.pop(0)
        while run and run[-1][2] in ("a", "and"):
            run.pop()
        if run:
            value = _words_value([word for _, _, word in run])
            if value is not None:
                found.append((run[0][0], run[-1][1], float(value)))
        index += 1
    return sorted(found)


def _hyphens_split(text: str) -> str:
    return re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text.lower())


def parse_number(text: str) -> float | None:
    """A whole answer read as one number ("4", "four", "1,200", "300k", "twenty-one"); else None."""
    cleaned = _hyphens_split(text.strip()).strip(" .!?")
    if not cleaned:
        return None
    spans = _number_spans(cleaned)
    if len(spans) != 1:
        return None
    start, end, value = spans[0]
    rest = (cleaned[:start] + " " + cleaned[end:]).strip(" ,.")
    filler = {"it's", "its", "it", "is", "a", "about", "make", "that", "people", "of", "us", "just"}
    if rest and any(word not in filler for word in rest.split()):
        return None
    return value


def find_number(text: str) -> float | None:
    """The first number said in ``text``, or None."""
    spans = _number_spans(_hyphens_split(text))
    return spans[0][2] if spans else None


# --------------------------------------------------------------------------- dates and times

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}  # fmt: skip
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ORDINAL_WORDS = "|".join(
    sorted(
        [*_ORDINALS, *(f"{t} {o}" for t in ("twenty", "thirty") for o in list(_ORDINALS)[:9])],
        key=len,
        reverse=True,
    )
)
_DAY = rf"(?P<day>\d{{1,2}}(?:st|nd|rd|th)?|{_ORDINAL_WORDS})"
_YEAR_WORDS = r"(?:(?:nineteen|twenty|two thousand)(?: and)?(?: [a-z]+){0,2})"
_YEAR = rf"(?P<year>\d{{4}}|'?\d{{2}}|{_YEAR_WORDS})"
_DATE_FORMS = [
    re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})\b"),
    re.compile(r"\b(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4}|\d{2})\b"),
    re.compile(rf"\b{_MONTH} (?:the )?{_DAY}(?:,? (?:of )?{_YEAR})?\b", re.IGNORECASE),
    re.compile(rf"\b(?:the )?{_DAY} (?:of )?{_MONTH}(?:,? {_YEAR})?\b", re.IGNORECASE),
]
_RELATIVE = {"today": 0, "tonight": 0, "tomorrow": 1, "day after tomorrow": 2}


def _ordinal_value(text: str) -> int | None:
    text = text.lower().strip()
    digits = re.match(r"^(\d{1,2})(?:st|nd|rd|th)?$", text)
    if digits:
        return int(digits.group(1))
    if text in _ORDINALS:
        return _ORDINALS[text]
    parts = text.split()
    if len(parts) == 2 and parts[0] in _TENS and parts[1] in _ORDINALS:
        return _TENS[parts[0]] + _ORDINALS[parts[1]]
    return None


def _year_value(text: str) -> int | None:
    text = text.lower().strip().lstrip("'")
    if text.isdigit():
        year = int(text)
        if len(text) == 2:
            year += 2000 if year < 50 else 1900
        return year
    words = [w for w in text.replace("-", " ").split() if w != "and"]
    whole = _words_value(words)
    if whole is not None and whole >= 1000:
        return whole
    for cut in range(1, len(words)):  # "nineteen eighty three" = 19 | 83
        high, low = _words_value(words[:cut]), _words_value(words[cut:])
        if high is not None and low is not None and 10 <= high <= 29 and low < 100:
            return high * 100 + low
    return None


def _month_value(text: str) -> int | None:
    text = text.lower().rstrip(".")
    if text.isdigit():
        return int(text)
    return _MONTHS.get(text)


def find_date(text: str, *, today: dt.date | None = None) -> tuple[str, bool] | None:
    """The first date said in ``text`` as (``"YYYY-MM-DD"``, whether a year was said); or None.

    Reads "2014-03-09", "3/9/2014" (month/day/year), "March 9th 2014", "9 March 2014",
    "the 9th of March, 2014", "January first nineteen eighty three", "today", "tomorrow".
    A date said without a year is its next occurrence from ``today``.
    """
    lowered = _hyphens_split(text)
    base = today or dt.date.today()
    best: tuple[int, str, bool] | None = None
    for form in _DATE_FORMS:
        for match in form.finditer(lowered):
            parts = match.groupdict()
            month = _month_value(parts["month"])
            day = _ordinal_value(parts["day"])
            year = _year_value(parts["year"]) if parts.get("year") else None
            if month is None or day is None:
                continue
            try:
                if year is None:
                    value = dt.date(base.year, month, day)
                    if value < base:
                        value = dt.date(base.year + 1, month, day)
                else:
                    value = dt.date(year, month, day)
            except ValueError:
                continue
            if best is None or match.start() < best[0]:
                best = (match.start(), value.isoformat(), year is not None)
    if best is None:
        for phrase, days in sorted(_RELATIVE.items(), key=lambda kv: -len(kv[0])):
            if re.search(rf"\b{phrase}\b", lowered):
                return (base + dt.timedelta(days=days)).isoformat(), True
        return None
    return best[1], best[2]


_TIME_FORMS = [
    re.compile(
        r"\b(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<half>a\.?m\.?|p\.?m\.?)(?![a-z])",
        re.IGNORECASE,
    ),
    re.compile(r"\b(?P<hour>\d{1,2}):(?P<minute>\d{2})\b"),
    re.compile(
        r"\b(?P<hour>"
        + "|".join(sorted((*_UNITS, *_TENS), key=len, reverse=True))
        + r")(?: (?P<minute>(?:[a-z]+(?: [a-z]+)?)|o'clock))?\s*(?P<half>a\.?m\.?|p\.?m\.?|in the morning|in the evening|at night|in the afternoon|o'clock)",
        re.IGNORECASE,
    ),
]


def find_time(text: str) -> str | None:
    """The first time of day said in ``text`` as ``"HH:MM"`` (24 h); or None.

    Reads "7pm", "7:30 p.m.", "19:30", "seven thirty pm", "seven in the evening", "noon",
    "midnight".
    """
    lowered = _hyphens_split(text)
    best: tuple[int, str] | None = None
    for form in _TIME_FORMS:
        for match in form.finditer(lowered):
            parts = match.groupdict()
            hour_text, minute_text = parts["hour"], parts.get("minute")
            half = (parts.get("half") or "").replace(".", "").replace(" ", "")
            hour = int(hour_text) if hour_text.isdigit() else _UNITS.get(hour_text)
            if hour is None:
                continue
            if minute_text in (None, "o'clock"):
                minute: int | None = 0
            elif minute_text.isdigit():
                minute = int(minute_text)
            else:
                minute = _words_value(minute_text.split())
            if minute is None or minute > 59:
                continue
            if half in ("pm", "intheevening", "atnight", "intheafternoon") and hour < 12:
                hour += 12
            elif half in ("am", "inthemorning") and hour == 12:
                hour = 0
            if hour > 23:
                continue
            if best is None or match.start() < best[0]:
                best = (match.start(), f"{hour:02d}:{minute:02d}")
    if best is not None:
        return best[1]
    if re.search(r"\bnoon\b|\bmidday\b", lowered):
        return "12:00"
    if re.search(r"\bmidnight\b", lowered):
        return "00:00"
    return None


# --------------------------------------------------------------------------- other types

_YES = ("yes", "yeah", "yep", "yup", "sure", "correct", "true", "affirmative", "of course",
        "definitely", "absolutely", "i do", "i am", "that's right", "right")  # fmt: skip
_NO = ("no", "nope", "nah", "false", "negative", "not", "never", "i don't", "i do not",
       "i'm not", "i am not")  # fmt: skip


def find_boolean(text: str) -> bool | None:
    """Yes or no in ``text`` (the earliest yes/no word wins); or None."""
    lowered = text.lower()
    best: tuple[int, bool] | None = None
    for words, value in ((_NO, False), (_YES, True)):
        for word in words:
            match = re.search(rf"(?<![\w']){re.escape(word)}(?![\w'])", lowered)
            if match and (best is None or match.start() < best[0]):
                best = (match.start(), value)
    return best[1] if best else None


EMAIL_RE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._%+\-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
)
_SPOKEN_EMAIL = {"at": "@", "dot": ".", "underscore": "_", "dash": "-", "hyphen": "-", "plus": "+"}


_EMAIL_LEAD = re.compile(
    r"^(?:(?:my |the )?e-?mail(?: address)?(?: is|'s)?|it's|it is|that's|sure)[\s,:]+",
    re.IGNORECASE,
)


def _spoken_email(text: str) -> str:
    """ "john dot smith at example dot com" → "john.smith@example.com"."""
    for _ in range(2):
        text = _EMAIL_LEAD.sub("", text.strip())
    words = text.lower().replace(",", " ").split()
    return "".join(_SPOKEN_EMAIL.get(word, word) for word in words)


_DIGIT_WORDS = {k: v for k, v in _UNITS.items() if v < 10}
_PHONE_RUN = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")


def _phone_digits(text: str) -> str | None:
    """The digits of a phone number (``+`` kept), from digits or digit words; or None."""
    tokens = re.findall(r"\+|\d|[a-z]+", text.lower())
    out: list[str] = []
    for token in tokens:
        if token == "+" and not out:
            out.append("+")
        elif token.isdigit():
            out.append(token)
        elif token in _DIGIT_WORDS:
            out.append(str(_DIGIT_WORDS[token]))
        elif token in ("double", "triple"):
            out.append(token)
    digits: list[str] = []
    repeat = 1
    for token in out:
        if token == "double":
            repeat = 2
        elif token == "triple":
            repeat = 3
        else:
            digits.append(token * repeat)
            repeat = 1
    joined = "".join(digits)
    count = len(joined.lstrip("+"))
    return joined if 7 <= count <= 15 else None


_NAME_LEAD = re.compile(
    r"^(?:(?:my )?(?:full )?name(?:'s| is)|this is|it's|it is|i'm|i am|call me)\s+",
    re.IGNORECASE,
)
_NAME_RE = re.compile(r"^[^\W\d_]+(?:[ '\-.][^\W\d_]+\.?)*$")
_NAME_IN_TEXT = re.compile(
    r"\b(?:my (?:full )?name is|name's|this is|i'm|i am|call me)\s+([^\W\d_]+(?:[ '\-][^\W\d_]+){0,3})",
    re.IGNORECASE,
)


def _clean_name(text: str) -> str:
    name = _NAME_LEAD.sub("", text.strip()).strip(" .,!?")
    if name.islower():
        name = " ".join(part[:1].upper() + part[1:] for part in name.split(" "))
    return name


# --------------------------------------------------------------------------- the rules


def label_of(field_name: str) -> str:
    """``party_size`` → ``party size``: how a field is named in a sentence."""
    return field_name.replace("_", " ")


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def describe(rules: FieldRules, label: str) -> str:
    """What a valid value is, as the end of a sentence: "a whole number between 1 and 12"."""
    kind = rules.type
    low, high = rules.min, rules.max
    if kind in ("integer", "number"):
        noun = "a whole number" if kind == "integer" else "a number"
        if low is not None and high is not None:
            return f"{noun} between {_format_number(low)} and {_format_number(high)}"
        if low is not None:
            return f"{noun} of at least {_format_number(low)}"
        if high is not None:
            return f"{noun} of at most {_format_number(high)}"
        return noun
    if kind == "boolean":
        return "yes or no"
    if kind == "enum":
        return "one of: " + ", ".join(rules.choices)
    if kind == "date":
        return "a date, such as March 9 2014"
    if kind == "dob":
        return "a date of birth with the year, such as January 1 1983"
    if kind == "time":
        return "a time of day, such as 7:30 pm"
    if kind == "email":
        return "an email address, such as name@example.com"
    if kind == "phone":
        return "a phone number of 7 to 15 digits"
    if kind == "name":
        return "a name (letters only)"
    if kind == "address":
        return "a street address"
    if kind == "list":
        count = ""
        if low is not None and high is not None:
            count = f" of {_format_number(low)} to {_format_number(high)} items"
        elif low is not None:
            count = f" of at least {_format_number(low)} items"
        elif high is not None:
            count = f" of at most {_format_number(high)} items"
        return f"a list{count}"
    return "text"


def _refuse(label: str, rules: FieldRules, override: str | None = None) -> FieldValueError:
    return FieldValueError(f"the {label} must be {override or describe(rules, label)}")


def normalise(
    rules: FieldRules, raw: object, *, label: str, today: dt.date | None = None
) -> FieldValue:
    """``raw`` as the field stores it, with its JSON type; :class:`FieldValueError` if refused.

    ``label`` names the field in the message ("party size").
    """
    if rules.type == "list":
        return _normalise_list(rules, raw, label=label, today=today)
    return _normalise_scalar(rules, rules.type, raw, label=label, today=today)


def _normalise_list(
    rules: FieldRules, raw: object, *, label: str, today: dt.date | None
) -> list[Scalar]:
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            with contextlib.suppress(ValueError):
                raw = json.loads(text)
    if isinstance(raw, str):
        parts = [p.strip(" .") for p in re.split(r",|;|\band\b|\n", raw) if p.strip(" .")]
    elif isinstance(raw, list | tuple):
        parts = list(raw)
    else:
        raise FieldValueError(f"the {label} must be a list")
    item_type = rules.items or "string"
    values: list[Scalar] = []
    for part in parts[: MAX_LIST_ITEMS + 1]:
        try:
            item = _normalise_scalar(
                _ItemRules(rules), item_type, part, label=f"{label} item", today=today
            )
        except FieldValueError as exc:
            raise FieldValueError(f"{_shown(part)} is not accepted: {exc}") from None
        if item not in values:
            values.append(item)
    low, high = rules.min, rules.max
    if (low is not None and len(values) < low) or (high is not None and len(values) > high):
        raise _refuse(label, rules)
    if not values:
        raise FieldValueError(f"the {label} must list at least one item")
    if len(values) > MAX_LIST_ITEMS:
        raise FieldValueError(f"the {label} may hold at most {MAX_LIST_ITEMS} items")
    return values


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = "".join(ch if ch.isprintable() else " " for ch in text[:40]).strip()
    return f'"{text}"'


def _normalise_scalar(
    rules: FieldRules, kind: str, raw: object, *, label: str, today: dt.date | None
) -> Scalar:
    if isinstance(raw, bool) and kind != "boolean":
        raise _refuse(label, rules) if kind != "list" else FieldValueError(label)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if kind in ("integer", "number"):
            return _bounded(rules, kind, float(raw), label)
        raw = _format_number(float(raw))
    if not isinstance(raw, str):
        if kind == "boolean" and isinstance(raw, bool):
            return raw
        raise _refuse(label, rules)
    text = raw.strip() if kind == "string" else " ".join(raw.split())
    if not text:
        raise FieldValueError(f"no {label} was given")
    if len(text) > MAX_TEXT:
        raise FieldValueError(
            f"the {label} is too long ({len(text)} characters; at most {MAX_TEXT})"
        )
    if kind in ("integer", "number"):
        number = parse_number(text)
        if number is None:
            raise _refuse(label, rules)
        return _bounded(rules, kind, number, label)
    if kind == "boolean":
        value = find_boolean(text)
        if value is None:
            raise _refuse(label, rules)
        return value
    if kind == "enum":
        choice = find_choice(rules, text, whole=True)
        if choice is None:
            raise _refuse(label, rules)
        return choice
    if kind in ("date", "dob"):
        found = find_date(text, today=today)
        if found is None:
            raise _refuse(label, rules)
        iso, has_year = found
        if kind == "dob":
            born = dt.date.fromisoformat(iso)
            if not has_year:
                raise FieldValueError(f"the {label} needs the year as well")
            if born > (today or dt.date.today()) or born.year < 1900:
                raise FieldValueError(f"the {label} must be a date in the past, after 1900")
        return iso
    if kind == "time":
        found_time = find_time(text)
        if found_time is None:
            raise _refuse(label, rules)
        return found_time
    if kind == "email":
        written = EMAIL_RE.search(text)
        candidate = written.group(0) if written else _spoken_email(text)
        if not EMAIL_RE.fullmatch(candidate):
            raise _refuse(label, rules)
        return _matching(rules, candidate.lower(), label)
    if kind == "phone":
        digits = _phone_digits(text)
        if digits is None:
            raise _refuse(label, rules)
        return _matching(rules, digits, label)
    if kind == "name":
        name = _clean_name(text)
        if not name or len(name) > 100 or not _NAME_RE.fullmatch(name):
            raise _refuse(label, rules)
        return _matching(rules, name, label)
    if kind == "address":
        if len(text) < 5 or not re.search(r"[^\W\d_]", text):
            raise _refuse(label, rules)
        return _matching(rules, text, label)
    # string
    return _matching(rules, text, label, plain=True)


def _matching(rules: FieldRules, text: str, label: str, *, plain: bool = False) -> str:
    regex = rules.regex
    if regex is None or regex.fullmatch(text) is not None:
        return text
    raise FieldValueError(f"the {label} is not valid" if plain else _refuse(label, rules).args[0])


def _bounded(rules: FieldRules, kind: str, number: float, label: str) -> int | float:
    if kind == "integer":
        if not float(number).is_integer():
            raise _refuse(label, rules)
        value: int | float = int(number)
    else:
        value = int(number) if float(number).is_integer() else number
    low, high = rules.min, rules.max
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            bounds = f"between {_format_number(low)} and {_format_number(high)}"
        elif low is not None:
            bounds = f"at least {_format_number(low)}"
        else:
            bounds = f"at most {_format_number(high or 0)}"
        raise _refuse(label, rules, bounds)
    return value


def _choice_terms(rules: FieldRules) -> list[tuple[str, str]]:
    """(word as said, choice) for every choice and synonym, longest first."""
    terms = [(choice.lower(), choice) for choice in rules.choices]
    for choice, words in rules.synonyms.items():
        terms += [(word.lower(), choice) for word in words]
    return sorted(terms, key=lambda term: -len(term[0]))


def find_choice(rules: FieldRules, text: str, *, whole: bool = False) -> str | None:
    """The choice ``text`` names (a choice or a synonym, case-insensitive, whole words).

    ``whole``: the text is an answer ("married", "I'm married") — the earliest, longest term
    wins; a term negated right before ("not married") does not count.
    """
    lowered = " ".join(text.lower().split())
    best: tuple[int, int, str] | None = None
    for term, choice in _choice_terms(rules):
        for match in re.finditer(rf"(?<![\w]){re.escape(term)}(?![\w])", lowered):
            before = lowered[: match.start()].rstrip()
            if before.endswith((" not", "not")) and before.split()[-1] == "not":
                continue
            key = (match.start(), -len(term))
            if best is None or key < best[:2]:
                best = (match.start(), -len(term), choice)
            break
    return best[2] if best else None


def find_value(
    rules: FieldRules, text: str, *, label: str, today: dt.date | None = None
) -> FieldValue | None:
    """A value of the field's type said somewhere in ``text`` (not necessarily all of it), already
    normalised and accepted; None when there is none (or it would be refused).

    Free-text types (string without a pattern, name, address, list of strings) are not searched:
    they are only taken as the whole answer to their question.
    """
    candidate = find_candidate(rules, text, today=today)
    if candidate is None:
        return None
    try:
        return normalise(rules, candidate, label=label, today=today)
    except FieldValueError:
        return None


def find_candidate(rules: FieldRules, text: str, *, today: dt.date | None = None) -> object | None:
    """What in ``text`` looks like a value of the field's type (not yet checked against its
    bounds): the number in "we are 13", the date in "on March 9th"; None when nothing does."""
    kind = rules.type
    candidate: object | None = None
    lowered = _hyphens_split(text)
    if kind in ("integer", "number"):
        spans = [span for span in _number_spans(lowered) if not _inside_date_or_time(text, span)]
        candidate = spans[0][2] if spans else None
    elif kind == "boolean":
        candidate = find_boolean(text)
    elif kind == "enum":
        candidate = find_choice(rules, text)
    elif kind in ("date", "dob"):
        found = find_date(text, today=today)
        candidate = found[0] if found and (found[1] or kind == "date") else None
    elif kind == "time":
        candidate = find_time(text)
    elif kind == "email":
        match = EMAIL_RE.search(text)
        candidate = match.group(0) if match else None
    elif kind == "phone":
        match = _PHONE_RUN.search(text)
        candidate = match.group(0) if match else None
    elif kind == "name":
        match = _NAME_IN_TEXT.search(text)
        candidate = match.group(1) if match else None
    elif kind == "list" and rules.items == "enum":
        found_choices = _all_choices(rules, text)
        candidate = found_choices or None
    return candidate


def _all_choices(rules: FieldRules, text: str) -> list[str]:
    lowered = text.lower()
    hits: list[tuple[int, str]] = []
    for term, choice in _choice_terms(rules):
        match = re.search(rf"(?<![\w]){re.escape(term)}(?![\w])", lowered)
        if match and choice not in (c for _, c in hits):
            hits.append((match.start(), choice))
    return [choice for _, choice in sorted(hits)]


def _inside_date_or_time(text: str, span: tuple[int, int, float]) -> bool:
    """A number that is part of a date or a time ("March 9th", "7:30") is not a count."""
    start, end, _ = span
    around = text[max(0, start - 12) : end + 6].lower()
    if re.search(r"\d:\d", text[max(0, start - 3) : end + 3]):
        return True
    if re.search(r"\d\s*(?:am|pm|a\.m|p\.m)\b", text[start : end + 5].lower()):
        return True
    return any(month in around.split() for month in _MONTHS) and (
        bool(re.match(r"\d+(st|nd|rd|th)", text[start : end + 2]))
        or bool(re.search(r"\d{4}", text[start:end]))
        or bool(re.search(r"|".join(_MONTHS), text[max(0, start - 12) : start].lower()))
    )


def as_text(value: object) -> str:
    """How a stored value is spoken and put in a line: ``4`` → "4", ``True`` → "yes",
    ``["a", "b"]`` → "a, b"."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _format_number(value)
    if isinstance(value, list):
        return ", ".join(as_text(item) for item in value)
    return str(value)


def json_schema(rules: FieldRules, description: str) -> dict[str, object]:
    """The JSON schema of a value of this field (the record tool's argument), with constraints."""
    return _schema_of(rules, rules.type, description)


def _schema_of(rules: FieldRules, kind: str, description: str) -> dict[str, object]:
    schema: dict[str, object] = {"description": description}
    if kind in ("integer", "number"):
        schema["type"] = kind
        if rules.min is not None:
            schema["minimum"] = _json_number(rules.min)
        if rules.max is not None:
            schema["maximum"] = _json_number(rules.max)
    elif kind == "boolean":
        schema["type"] = "boolean"
    elif kind == "enum":
        schema["type"] = "string"
        schema["enum"] = list(rules.choices)
        if rules.synonyms:
            said = "; ".join(
                f"{', '.join(words)} mean {choice}" for choice, words in rules.synonyms.items()
            )
            schema["description"] = f"{description} (the caller may say: {said})"
    elif kind in ("date", "dob"):
        schema.update(type="string", format="date")
        schema["description"] = f"{description} (as YYYY-MM-DD)"
    elif kind == "time":
        schema.update(type="string", pattern=r"^\d{2}:\d{2}$")
        schema["description"] = f"{description} (24-hour HH:MM)"
    elif kind == "email":
        schema.update(type="string", format="email")
    elif kind == "list":
        item_kind = rules.items or "string"
        schema["type"] = "array"
        items = _schema_of(_ItemRules(rules), item_kind, f"one {item_kind} item")
        schema["items"] = items
        if rules.min is not None:
            schema["minItems"] = int(rules.min)
        if rules.max is not None:
            schema["maxItems"] = int(rules.max)
    else:
        schema["type"] = "string"
        regex = rules.regex
        if regex is not None:
            schema["pattern"] = regex.pattern
    return schema


def _json_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


class _ItemRules:
    """A list field's rules as they apply to one item (no bounds: those count items)."""

    def __init__(self, rules: FieldRules) -> None:
        self._rules = rules
        self.type: FieldType = rules.items or "string"
        self.choices = rules.choices
        self.synonyms = rules.synonyms
        self.min: float | None = None
        self.max: float | None = None
        self.items: ItemType | None = None
        self.regex = rules.regex
