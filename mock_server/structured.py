"""JSON schemas a client sends, checked as OpenAI checks them, and seeded values that satisfy them.

Two surfaces ask the model for JSON that follows a schema: a function tool's ``parameters`` (the
arguments of a tool call) and ``response_format: {"type": "json_schema", ...}`` (the reply's content).
A mock that answers them with lorem text makes client code fail far from the cause — langchain's
``with_structured_output`` returns ``None``, the SDK's ``parse`` raises a validation error — so this
module gives the server two things:

:func:`check_schema`
    Validates the schema itself before any limit is asked, as OpenAI does: a malformed schema (``type``
    is not a type, ``required`` is not a list of strings, a ``$ref`` that points nowhere, ``minimum`` above
    ``maximum``) raises :class:`SchemaProblem`, whose message starts with the JSON path of the problem
    inside the schema (``properties.city.type: ...``). With ``strict=True`` it also applies the rules of
    OpenAI's *Structured Outputs* strict mode:

    * the root is an object schema (not an ``anyOf``);
    * every object schema says ``additionalProperties: false`` and lists every property in ``required``
      (an optional field is spelled as a required one whose type admits ``null``);
    * only the supported keywords appear: ``type``, ``properties``, ``required``, ``additionalProperties``,
      ``items``, ``enum``, ``const``, ``anyOf``, ``$ref``, ``$defs``/``definitions``, the annotations
      ``title``/``description``/``default``/``examples``/``$schema``/``$id``/``$comment``, and the
      constraints ``pattern``, ``format``, ``minLength``, ``maxLength``, ``minimum``, ``maximum``,
      ``exclusiveMinimum``, ``exclusiveMaximum``, ``multipleOf``, ``minItems``, ``maxItems``;
      ``allOf``, ``oneOf``, ``not``, ``if``/``then``/``else``, ``patternProperties`` and the like are
      refused (OpenAI answers "... is not permitted");
    * at most 10 levels of object nesting and 5,000 properties in all.

    The route turns a :class:`SchemaProblem` into an OpenAI-shaped 400 (``invalid_request_error``, with
    ``param`` naming the field the schema came in, e.g. ``tools[0].function.parameters``).

:func:`generate`
    A value valid against a (checked) schema, drawn from the request's seeded dice: the same dice
    sequence gives the same value. What it honours:

    ==================  ==================================================================================
    keyword             what the generated value does
    ==================  ==================================================================================
    ``type``            one of the listed types (a list such as ``["string", "null"]``: one is drawn)
    ``enum``/``const``  one of the values / the value
    ``anyOf``/``oneOf`` one branch, drawn (``oneOf`` is not checked for exclusivity); ``allOf``: merged
    ``$ref``            ``#``, ``#/$defs/...``, ``#/definitions/...`` (any JSON pointer into the root);
                        past :data:`MAX_DEPTH` levels the generator takes the way out of a recursion
                        (``null``, an empty array, an absent optional property) where the schema has one
    object              every ``required`` property, plus each optional one with probability 1/2
                        (``minProperties`` respected); no additional properties
    array               ``minItems`` to ``maxItems`` items (a few when unbounded), ``uniqueItems`` best
                        effort
    string              words within ``minLength``/``maxLength``; ``format`` ``date-time``, ``date``,
                        ``time``, ``email``, ``uuid``, ``uri``, ``hostname``, ``ipv4``, ``ipv6``,
                        ``duration``; a ``pattern`` made of literals, classes, groups, alternatives and
                        repeats is followed (others: words, which may not match)
    number/integer      within ``minimum``/``maximum``/``exclusive*`` (both spellings of exclusive),
                        a multiple of ``multipleOf``
    boolean, null       a coin toss, ``None``
    ==================  ==================================================================================

    Keywords that constrain beyond that (``not``, ``if``/``then``/``else``, ``contains``,
    ``dependentRequired``, ``propertyNames``) are accepted in non-strict schemas and ignored, as a model
    would ignore what it does not understand; strict mode refuses them, so a strict schema is always met.

:func:`find_schema_in_text` serves JSON mode (``response_format: {"type": "json_object"}``), where the
schema is only described in the prompt: it finds the last JSON schema written in a text (the format
instructions of langchain's output parsers put one there), so the mock can answer with an object that
follows it.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from .dice import Rng

__all__ = [
    "MAX_DEPTH",
    "SchemaProblem",
    "check_schema",
    "find_schema_in_text",
    "generate",
    "lorem_words",
]

MAX_DEPTH: Final = 6
"""How many ``$ref`` hops deep the generator follows a recursive schema before taking its way out."""

_HARD_DEPTH: Final = 64  # beyond this a schema has no finite value (a required self-reference)
MAX_SIZE: Final = 100_000
"""The most a generated value may hold (values plus string characters): a schema whose smallest value is
larger (``minItems: 1000000``, nested arrays multiplying) is a :class:`SchemaProblem`, not a hang."""

_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})

_ANNOTATIONS: Final = frozenset(
    {"title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated"}
)
_STRICT_KEYWORDS: Final = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "$defs",
        "definitions",
        "pattern",
        "format",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
    | _ANNOTATIONS
)
_STRICT_FORMATS: Final = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid", "uri"}
)
STRICT_MAX_NESTING: Final = 10
STRICT_MAX_PROPERTIES: Final = 5000

# Keywords whose value is a schema, a list of schemas, or a map of schemas (for walking a schema).
_ONE_SCHEMA: Final = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_SCHEMA_LISTS: Final = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS: Final = ("properties", "$defs", "definitions", "patternProperties")


class SchemaProblem(ValueError):
    """A JSON schema a client sent is malformed, or breaks the strict-mode rules.

    ``str(problem)`` is ``"<path>: <what is wrong>"``, the path written with dots and ``[i]`` from the
    schema's root (``(root)`` for the root itself); :attr:`path` and :attr:`reason` hold the two parts,
    and :attr:`where` the request field the schema came in (as given to :func:`check_schema`; ``""`` when
    raised by :func:`generate`) — what a route puts in its 400's ``param``.
    """

    def __init__(self, path: str, reason: str, where: str = "") -> None:
        self.path = path or "(root)"
        self.reason = reason
        self.where = where
        super().__init__(f"{self.path}: {reason}")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- checking ----------------------------------------------------------------------------------------


class _Checker:
    """Walks a schema once, checking each node; remembers the ``$ref`` targets to resolve at the end."""

    def __init__(self, root: Mapping[str, Any], strict: bool) -> None:
        self.root = root
        self.strict = strict
        self.refs: list[tuple[str, str]] = []
        self.properties = 0

    def node(self, schema: object, path: str, nesting: int) -> None:
        if isinstance(schema, bool):
            if self.strict:
                raise SchemaProblem(path, "a boolean schema is not permitted in strict mode")
            return
        if not isinstance(schema, Mapping):
            raise SchemaProblem(path, f"a schema must be an object, got {type(schema).__name__}")
        for key in schema:
            if not isinstance(key, str):
                raise SchemaProblem(path, "schema keys must be strings")
        if self.strict:
            for key in schema:
                if key not in _STRICT_KEYWORDS:
                    raise SchemaProblem(_join(path, key), f"'{key}' is not permitted in strict mode")
        types = self.types(schema, path)
        self.combinators(schema, path, nesting)
        self.enum(schema, path)
        ref = schema.get("$ref")
        if ref is not None:
            if not isinstance(ref, str):
                raise SchemaProblem(_join(path, "$ref"), "'$ref' must be a string")
            self.refs.append((ref, _join(path, "$ref")))
        for defs in ("$defs", "definitions"):
            table = schema.get(defs)
            if table is None:
                continue
            if not isinstance(table, Mapping):
                raise SchemaProblem(_join(path, defs), f"'{defs}' must be an object of schemas")
            for name, sub in table.items():
                self.node(sub, _join(_join(path, defs), name), nesting)
        is_object = "object" in types or (not types and "properties" in schema)
        self.object(schema, path, nesting, is_object)
        self.array(schema, path, nesting)
        self.string(schema, path)
        self.number(schema, path, integer=types == {"integer"})
        for key in _ONE_SCHEMA:
            if key in schema and key not in ("items", "additionalProperties"):
                self.node(schema[key], _join(path, key), nesting)
        if self.strict and not types and not any(k in schema for k in ("anyOf", "$ref", "enum", "const")):
            raise SchemaProblem(path, "a schema must have a 'type' in strict mode")

    def types(self, schema: Mapping[str, Any], path: str) -> set[str]:
        kind = schema.get("type")
        if kind is None:
            return set()
        names = kind if isinstance(kind, list) else [kind]
        if not names:
            raise SchemaProblem(_join(path, "type"), "'type' must not be an empty array")
        for name in names:
            if not isinstance(name, str) or name not in _TYPES:
                raise SchemaProblem(
                    _join(path, "type"),
                    f"{name!r} is not a valid type (expected one of {', '.join(sorted(_TYPES))})",
                )
        return set(names)

    def combinators(self, schema: Mapping[str, Any], path: str, nesting: int) -> None:
        for key in _SCHEMA_LISTS:
            branches = schema.get(key)
            if branches is None:
                continue
            if not isinstance(branches, list) or not branches:
                raise SchemaProblem(_join(path, key), f"'{key}' must be a non-empty array of schemas")
            for i, branch in enumerate(branches):
                self.node(branch, _join(_join(path, key), i), nesting)

    def enum(self, schema: Mapping[str, Any], path: str) -> None:
        values = schema.get("enum")
        if values is not None and (not isinstance(values, list) or not values):
            raise SchemaProblem(_join(path, "enum"), "'enum' must be a non-empty array")

    def object(self, schema: Mapping[str, Any], path: str, nesting: int, is_object: bool) -> None:
        properties = schema.get("properties")
        if properties is not None and not isinstance(properties, Mapping):
            raise SchemaProblem(_join(path, "properties"), "'properties' must be an object of schemas")
        properties = properties or {}
        if is_object:
            nesting += 1
            if self.strict and nesting > STRICT_MAX_NESTING:
                raise SchemaProblem(
                    path, f"objects may be nested at most {STRICT_MAX_NESTING} levels deep in strict mode"
                )
        for name, sub in properties.items():
            self.node(sub, _join(_join(path, "properties"), name), nesting)
        self.properties += len(properties)
        if self.strict and self.properties > STRICT_MAX_PROPERTIES:
            raise SchemaProblem(path, f"a strict schema may have at most {STRICT_MAX_PROPERTIES} properties")
        required = schema.get("required")
        if required is not None and (
            not isinstance(required, list) or not all(isinstance(name, str) for name in required)
        ):
            raise SchemaProblem(_join(path, "required"), "'required' must be an array of strings")
        extra = schema.get("additionalProperties")
        if extra is not None and not isinstance(extra, bool):
            self.node(extra, _join(path, "additionalProperties"), nesting)
        if not self.strict or not is_object:
            return
        if extra is not False:
            raise SchemaProblem(
                _join(path, "additionalProperties"),
                "'additionalProperties' is required to be supplied and to be false in strict mode",
            )
        missing = [name for name in properties if name not in (required or [])]
        if missing:
            raise SchemaProblem(
                _join(path, "required"),
                "'required' is required to be supplied and to be an array including every key in "
                f"properties in strict mode; missing {', '.join(repr(m) for m in missing)}",
            )
        unknown = [name for name in required or [] if name not in properties]
        if unknown:
            raise SchemaProblem(
                _join(path, "required"),
                f"names properties that do not exist: {', '.join(map(repr, unknown))}",
            )

    def array(self, schema: Mapping[str, Any], path: str, nesting: int) -> None:
        items = schema.get("items")
        if items is not None:
            if isinstance(items, list) and not self.strict:  # draft-4 tuple form
                for i, sub in enumerate(items):
                    self.node(sub, _join(_join(path, "items"), i), nesting)
            else:
                self.node(items, _join(path, "items"), nesting)
        self.bounds(schema, path, "minItems", "maxItems")

    def string(self, schema: Mapping[str, Any], path: str) -> None:
        self.bounds(schema, path, "minLength", "maxLength")
        fmt = schema.get("format")
        if fmt is not None:
            if not isinstance(fmt, str):
                raise SchemaProblem(_join(path, "format"), "'format' must be a string")
            if self.strict and fmt not in _STRICT_FORMATS:
                raise SchemaProblem(
                    _join(path, "format"),
                    f"format {fmt!r} is not supported in strict mode (supported: "
                    f"{', '.join(sorted(_STRICT_FORMATS))})",
                )
        pattern = schema.get("pattern")
        if pattern is not None:
            if not isinstance(pattern, str):
                raise SchemaProblem(_join(path, "pattern"), "'pattern' must be a string")
            try:
                re.compile(pattern)
            except (re.error, RecursionError, OverflowError) as err:
                raise SchemaProblem(
                    _join(path, "pattern"), f"not a valid regular expression ({err})"
                ) from None

    def bounds(self, schema: Mapping[str, Any], path: str, low: str, high: str) -> None:
        for key in (low, high):
            value = schema.get(key)
            if value is not None and (not _is_int(value) or value < 0):
                raise SchemaProblem(_join(path, key), f"'{key}' must be a non-negative integer")
        lo, hi = schema.get(low), schema.get(high)
        if lo is not None and hi is not None and lo > hi:
            raise SchemaProblem(_join(path, low), f"'{low}' ({lo}) is greater than '{high}' ({hi})")

    def number(self, schema: Mapping[str, Any], path: str, *, integer: bool) -> None:
        for key in ("minimum", "maximum", "multipleOf"):
            value = schema.get(key)
            if value is not None and not _is_number(value):
                raise SchemaProblem(_join(path, key), f"'{key}' must be a number")
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            value = schema.get(key)
            if value is not None and not isinstance(value, bool) and not _is_number(value):
                raise SchemaProblem(_join(path, key), f"'{key}' must be a number")
        step = schema.get("multipleOf")
        if step is not None and step <= 0:
            raise SchemaProblem(_join(path, "multipleOf"), "'multipleOf' must be greater than 0")
        if not any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            return
        lo, lo_open, hi, hi_open = _numeric_bounds(schema)
        if lo is not None and hi is not None:
            empty = lo > hi or (lo == hi and (lo_open or hi_open))
            if not empty and (integer or step is not None):
                empty = _pick_number(schema, integer, None) is None
            if empty:
                raise SchemaProblem(path, "no number satisfies the minimum, maximum and multipleOf given")

    def resolve_refs(self) -> None:
        for ref, path in self.refs:
            try:
                resolve_pointer(self.root, ref)
            except KeyError as err:
                raise SchemaProblem(path, str(err.args[0])) from None


def resolve_pointer(root: Mapping[str, Any], ref: str) -> Any:
    """The schema a local ``$ref`` (``#``, ``#/$defs/Name``, any JSON pointer into ``root``) points at.

    Raises ``KeyError`` (its message says why) for a remote or dangling reference.
    """
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        raise KeyError(f"only local references ('#/...') are supported, got {ref!r}")
    node: Any = root
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(f"reference {ref!r} does not resolve")
    return node


def check_schema(schema: object, *, strict: bool, where: str) -> dict[str, Any]:
    """Check a JSON schema a client sent; return it (as a ``dict``) or raise :class:`SchemaProblem`.

    ``strict`` applies OpenAI's strict-mode rules (module docs). ``where`` names the request field the
    schema came in (``tools[0].function.parameters``); it is not part of the problem's path (which starts
    at the schema's root) but is kept as :attr:`SchemaProblem.where` — the route puts the two together in
    its 400 (see :func:`mock_server.schema.schema_error` for the chat route's wording).
    """
    try:
        return _check(schema, strict)
    except SchemaProblem as problem:
        problem.where = where
        raise
    except RecursionError:
        raise SchemaProblem("", "the schema is nested too deeply", where) from None


def _check(schema: object, strict: bool) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise SchemaProblem("", f"a schema must be an object, got {type(schema).__name__}")
    if strict:
        if "anyOf" in schema:
            raise SchemaProblem("", "the root of a strict schema must be an object, not 'anyOf'")
        if schema.get("type") != "object":
            raise SchemaProblem("type", "the root of a strict schema must have type 'object'")
    checker = _Checker(schema, strict)
    checker.node(schema, "", 0)
    checker.resolve_refs()
    return schema


# -- numbers ------------------------------------------------------------------------------------------


def _numeric_bounds(schema: Mapping[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """``(low, low_exclusive, high, high_exclusive)`` from both drafts' spellings of the bounds."""
    lo: float | None = schema.get("minimum")
    hi: float | None = schema.get("maximum")
    lo_open = hi_open = False
    ex_lo: Any = schema.get("exclusiveMinimum")
    ex_hi: Any = schema.get("exclusiveMaximum")
    if ex_lo is True:  # draft 4: a flag on minimum
        lo_open = lo is not None
    elif _is_number(ex_lo) and (lo is None or ex_lo >= lo):
        lo, lo_open = ex_lo, True
    if ex_hi is True:
        hi_open = hi is not None
    elif _is_number(ex_hi) and (hi is None or ex_hi <= hi):
        hi, hi_open = ex_hi, True
    return lo, lo_open, hi, hi_open


def _is_multiple(value: float, step: float) -> bool:
    """``value`` is a multiple of ``step`` as JSON Schema validators test it (a float quotient is whole)."""
    if isinstance(value, int) and isinstance(step, int):
        return value % step == 0
    try:
        return (value / step).is_integer()
    except (OverflowError, ZeroDivisionError):
        return False


def _pick_number(schema: Mapping[str, Any], integer: bool, dice: Rng | None) -> int | float | None:
    """An admissible number: drawn with ``dice``, the smallest one found without; None if none is found.

    Unbounded sides get a window of 100 (``[0, 100]`` when neither is given). With ``multipleOf`` (or
    for integers) the value is ``k * step`` for a drawn ``k``, kept only if it passes the same test the
    validators apply — floats such as ``3 * 0.1`` do not, so a few ``k`` are tried.
    """
    lo, lo_open, hi, hi_open = _numeric_bounds(schema)
    step = schema.get("multipleOf")

    def admissible(value: float) -> bool:
        if lo is not None and (value < lo or (lo_open and value == lo)):
            return False
        if hi is not None and (value > hi or (hi_open and value == hi)):
            return False
        if integer and not float(value).is_integer():
            return False
        return step is None or _is_multiple(value, step)

    if lo is None:
        low, high = (0.0, 100.0) if hi is None else (hi - 100.0, float(hi))
    else:
        low, high = float(lo), (lo + 100.0 if hi is None else float(hi))
    unit: float | None = step if step is not None else (1 if integer else None)
    if unit is None:
        for guess in (low if dice is None else dice.uniform(low, high), (low + high) / 2):
            if admissible(guess):
                return guess
        return None
    first, last = math.ceil(low / unit), math.floor(high / unit)
    if first > last:
        return None
    span = last - first + 1
    ks = [first + dice.randrange(min(span, 1 << 53)) for _ in range(8)] if dice is not None else []
    ks += [first + i for i in range(min(span, 64))]
    for k in ks:
        value: int | float = k * unit
        if integer or (isinstance(unit, int) and not isinstance(unit, bool)):
            if not float(value).is_integer():
                continue
            value = int(value)
        if admissible(value):
            return value
    return None


# -- generating ---------------------------------------------------------------------------------------

_LOREM_TEXT: Final = (
    "alpha bravo cedar delta ember falcon garnet harbor indigo jasper kestrel lumen marble nectar onyx "
    "pepper quartz raven sierra tundra umber velvet willow xenon yarrow zephyr amber basil cobalt dune"
)
_LOREM: Final = tuple(_LOREM_TEXT.split(" "))


def lorem_words(tokens: int, dice: Rng) -> str:
    """About ``tokens`` tokens (four characters each) of seeded lower-case words: the default text."""
    words: list[str] = []
    length = 0
    target = max(1, 4 * tokens)
    while length < target:
        word = _LOREM[dice.randrange(len(_LOREM))]
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


class _Generator:
    def __init__(
        self, root: Mapping[str, Any], dice: Rng, words: Callable[[int, Rng], str], small: bool
    ) -> None:
        self.root = root
        self.dice = dice
        self.words = words
        self.small = small
        self.floor = MAX_DEPTH if small else 0  # small: every node behaves as if deep in a recursion
        self.size = 0

    def grow(self, amount: int) -> None:
        self.size += amount
        if self.size > MAX_SIZE:
            raise SchemaProblem(
                "", f"the smallest value of this schema is too large (over {MAX_SIZE:,} items)"
            )

    def value(self, schema: object, depth: int) -> Any:
        if depth > _HARD_DEPTH:
            raise SchemaProblem("", "the schema admits no finite value (it requires itself)")
        self.grow(1)
        if schema is True or schema is None:
            return self.words(1, self.dice)
        if not isinstance(schema, Mapping):
            return None
        if "$ref" in schema and isinstance(schema["$ref"], str):
            target = resolve_pointer(self.root, schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            merged = _merge(target, rest) if _constrains(rest) else target
            return self.value(merged, depth + 1)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[self.dice.randrange(len(enum))]
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and all_of:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in all_of:
                merged = _merge(merged, self.deref(part))
            return self.value(merged, depth)
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in schema.items() if k != key}
                branch = self.pick(branches, depth)
                return self.value(_merge(rest, branch) if _constrains(rest) else branch, depth)
        kind = self.pick_type(schema, depth)
        if kind == "null":
            return None
        if kind == "boolean":
            return self.dice.random() < 0.5
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, depth)
        if kind in ("number", "integer"):
            return self.number(schema, integer=kind == "integer")
        return self.string(schema)

    def deref(self, schema: object) -> Mapping[str, Any]:
        for _ in range(_HARD_DEPTH):
            if isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and len(schema) == 1:
                schema = resolve_pointer(self.root, schema["$ref"])
            else:
                break
        return schema if isinstance(schema, Mapping) else {}

    def pick(self, branches: Sequence[object], depth: int) -> object:
        if depth + self.floor >= MAX_DEPTH:
            # Deep in a recursion: take a branch that does not recurse, preferring null.
            calm = [b for b in branches if not _recurses(b)]
            nulls = [b for b in calm if isinstance(b, Mapping) and b.get("type") == "null"]
            if nulls or calm:
                return (nulls or calm)[0]
        return branches[self.dice.randrange(len(branches))]

    def pick_type(self, schema: Mapping[str, Any], depth: int) -> str:
        kind = schema.get("type")
        if isinstance(kind, str):
            return kind
        if isinstance(kind, list) and kind:
            if depth + self.floor >= MAX_DEPTH and "null" in kind:
                return "null"
            return str(kind[self.dice.randrange(len(kind))])
        if "properties" in schema or "required" in schema:
            return "object"
        if "items" in schema:
            return "array"
        if any(k in schema for k in ("minimum", "maximum", "multipleOf")):
            return "number"
        return "string"

    def object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = [name for name in schema.get("required") or () if isinstance(name, str)]
        minimum = schema.get("minProperties") or 0
        out: dict[str, Any] = {}
        for name, sub in properties.items():
            # Optional properties: drawn with probability 1/2, and left out deep in a recursion.
            deep = depth + self.floor >= MAX_DEPTH
            if name in required or len(out) < minimum or (not deep and self.dice.random() < 0.5):
                out[name] = self.value(sub, depth)
        for name in required:
            if name not in out:  # required but not described: anything will do
                out[name] = self.value(schema.get("additionalProperties", True), depth)
        return out

    def array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        lo = schema.get("minItems") or 0
        hi = schema.get("maxItems")
        items = schema.get("items", True)
        if depth + self.floor >= MAX_DEPTH:
            count = lo
        else:
            top = lo + 3 if hi is None else min(hi, lo + 3)
            count = lo + self.dice.randrange(top - lo + 1)
        if self.size + count > MAX_SIZE:  # every item counts at least one: refuse now, not 100,000 items on
            self.grow(count)
        if isinstance(items, list):  # draft-4 tuple: one value per position, then nothing more
            return [self.value(sub, depth) for sub in items[: max(count, len(items))]]
        out: list[Any] = []
        for _ in range(count):
            value = self.value(items, depth)
            if schema.get("uniqueItems") is True:
                for _retry in range(8):
                    if value not in out:
                        break
                    value = self.value(items, depth)
            out.append(value)
        return out

    def number(self, schema: Mapping[str, Any], *, integer: bool) -> int | float:
        value = _pick_number(schema, integer, self.dice)
        if value is None:  # unsatisfiable in a way the check did not see: the nearest bound
            bound = schema.get("minimum", schema.get("maximum", 0))
            value = bound if _is_number(bound) else 0
        return int(value) if integer else value

    def string(self, schema: Mapping[str, Any]) -> str:
        lo = schema.get("minLength") or 0
        hi = schema.get("maxLength")
        fmt = schema.get("format")
        text: str | None = _formatted(fmt, self.dice) if isinstance(fmt, str) else None
        pattern = schema.get("pattern")
        if text is None and isinstance(pattern, str):
            text = _from_pattern(pattern, self.dice, lo, hi)
        if text is None:
            text = self.words(1 if self.small else 1 + self.dice.randrange(4), self.dice)
        self.grow(max(len(text), lo))
        if len(text) < lo:
            text = (text + " " + self.words(-(-lo // 4) + 1, self.dice))[: max(lo, 1)]
            while len(text) < lo:
                text += "x"
        if hi is not None and len(text) > hi:
            text = text[:hi]
        return text


def _constrains(rest: Mapping[str, Any]) -> bool:
    return any(key not in _ANNOTATIONS and key not in ("$defs", "definitions") for key in rest)


def _merge(a: object, b: object) -> dict[str, Any]:
    """Two schemas as one (for ``allOf`` and a ``$ref`` with siblings): properties and required united."""
    left = dict(a) if isinstance(a, Mapping) else {}
    right = b if isinstance(b, Mapping) else {}
    for key, value in right.items():
        if key == "properties" and isinstance(left.get(key), Mapping) and isinstance(value, Mapping):
            left[key] = {**left[key], **value}
        elif key == "required" and isinstance(left.get(key), list) and isinstance(value, list):
            left[key] = [*left[key], *(v for v in value if v not in left[key])]
        else:
            left[key] = value
    return left


def _recurses(schema: object) -> bool:
    """Whether a schema contains a ``$ref`` anywhere (a cheap, conservative test for recursion)."""
    if isinstance(schema, Mapping):
        return "$ref" in schema or any(_recurses(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_recurses(v) for v in schema)
    return False


def generate(
    schema: Mapping[str, Any],
    dice: Rng,
    *,
    words: Callable[[int, Rng], str] | None = None,
    small: bool = False,
) -> Any:
    """A value valid against ``schema`` (checked with :func:`check_schema` first), drawn from ``dice``.

    ``words(tokens, dice)`` writes the text of strings (default :func:`lorem_words`); the server passes
    its seeded lorem source. The same dice sequence and schema give the same value (module docs list
    what is honoured). ``small`` asks for the most compact value the generator knows: no optional
    properties, ``minItems`` items, the way out of every ``anyOf`` and type list that has one (``null``
    first), one-word strings — what the server falls back to when the first value would not fit in
    ``max_tokens``.
    """
    return _Generator(schema, dice, words or lorem_words, small).value(schema, 0)


# -- formats and patterns -----------------------------------------------------------------------------


def _hexes(dice: Rng, count: int) -> str:
    return "".join("0123456789abcdef"[dice.randrange(16)] for _ in range(count))


def _formatted(fmt: str, dice: Rng) -> str | None:
    """A seeded string in a well-known ``format`` (None for a format the generator does not know)."""
    year, month, day = 2020 + dice.randrange(8), 1 + dice.randrange(12), 1 + dice.randrange(28)
    hour, minute, second = dice.randrange(24), dice.randrange(60), dice.randrange(60)
    if fmt == "date-time":
        return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"
    if fmt == "date":
        return f"{year:04d}-{month:02d}-{day:02d}"
    if fmt == "time":
        return f"{hour:02d}:{minute:02d}:{second:02d}Z"
    if fmt == "duration":
        return f"P{1 + dice.randrange(9)}DT{hour}H"
    name = _LOREM[dice.randrange(len(_LOREM))]
    host = f"{_LOREM[dice.randrange(len(_LOREM))]}.example.com"
    if fmt in ("email", "idn-email"):
        return f"{name}@{host}"
    if fmt in ("hostname", "idn-hostname"):
        return host
    if fmt in ("uri", "url", "iri", "uri-reference", "iri-reference"):
        return f"https://{host}/{name}"
    if fmt == "uuid":
        h = _hexes(dice, 32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[dice.randrange(4)]}{h[17:20]}-{h[20:]}"
    if fmt == "ipv4":
        return ".".join(str(dice.randrange(256)) for _ in range(4))
    if fmt == "ipv6":
        return ":".join(_hexes(dice, 4) for _ in range(8))
    return None


def _from_pattern(pattern: str, dice: Rng, lo: int, hi: int | None) -> str | None:
    """A seeded string matching ``pattern`` (``re.search``, as JSON Schema means it), or None."""
    try:
        compiled = re.compile(pattern)
    except re.error:
        return None
    for _attempt in range(4):
        try:
            text = _PatternWriter(dice).write(pattern)
        except (_Unsupported, RecursionError):
            return None
        if compiled.search(text) and len(text) >= lo and (hi is None or len(text) <= hi):
            return text
    return None


class _Unsupported(Exception):
    pass


_PATTERN_LIMIT: Final = 10_000  # repeats a pattern may ask for before the writer gives up

# ``re``'s own parser and opcodes (``re._parser``, ``re._constants`` since 3.11; the old ``sre_parse``
# names are deprecated). Private, so typed as Any: only the parse tree's shape is relied upon.
_RE_PARSER: Any = importlib.import_module("re._parser")
_RE_CONSTANTS: Any = importlib.import_module("re._constants")


class _PatternWriter:
    """Writes a string matching a regular expression from its parse tree (``re``'s own parser).

    Covers literals, ``.``, classes and ranges, ``\\d \\w \\s``, groups, alternatives and repeats;
    anything else (lookarounds, backreferences) raises ``_Unsupported``. Unbounded repeats stop at 3.
    """

    def __init__(self, dice: Rng) -> None:
        self.dice = dice
        self.sc = _RE_CONSTANTS
        self.parse = _RE_PARSER.parse

    def write(self, pattern: str) -> str:
        self.length = 0
        return self.sequence(list(self.parse(pattern)))

    def sequence(self, items: Sequence[tuple[Any, Any]]) -> str:
        return "".join(self.item(op, av) for op, av in items)

    def item(self, op: Any, av: Any) -> str:
        sc = self.sc
        if op is sc.LITERAL:
            return chr(av)
        if op is sc.NOT_LITERAL:
            return "a" if av != ord("a") else "b"
        if op is sc.ANY:
            return "x"
        if op is sc.AT:
            return ""
        if op is sc.IN:
            return self.char_class(av)
        if op in (sc.MAX_REPEAT, sc.MIN_REPEAT, getattr(sc, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            top = lo + 3 if hi is sc.MAXREPEAT else min(hi, lo + 3)
            count = lo + self.dice.randrange(top - lo + 1)
            self.length += count
            if self.length > _PATTERN_LIMIT:  # x{100000}: words instead
                raise _Unsupported("too long")
            return "".join(self.sequence(list(sub)) for _ in range(count))
        if op is sc.SUBPATTERN:
            return self.sequence(list(av[-1]))
        if op is getattr(sc, "ATOMIC_GROUP", None):
            return self.sequence(list(av))
        if op is sc.BRANCH:
            branches = av[1]
            return self.sequence(list(branches[self.dice.randrange(len(branches))]))
        raise _Unsupported(str(op))

    def char_class(self, items: Sequence[tuple[Any, Any]]) -> str:
        sc = self.sc
        if items and items[0][0] is sc.NEGATE:
            excluded = {chr(av) for op, av in items[1:] if op is sc.LITERAL}
            for candidate in "xqz0_":
                if candidate not in excluded and not any(
                    op is sc.RANGE and av[0] <= ord(candidate) <= av[1] for op, av in items[1:]
                ):
                    return candidate
            raise _Unsupported("negated class")
        op, av = items[self.dice.randrange(len(items))]
        if op is sc.LITERAL:
            return chr(av)
        if op is sc.RANGE:
            return chr(av[0] + self.dice.randrange(av[1] - av[0] + 1))
        if op is sc.CATEGORY:
            return {
                sc.CATEGORY_DIGIT: "0123456789"[self.dice.randrange(10)],
                sc.CATEGORY_WORD: "abcxyz_09"[self.dice.randrange(9)],
                sc.CATEGORY_SPACE: " ",
            }.get(av, "x")
        raise _Unsupported(str(op))


# -- JSON mode --------------------------------------------------------------------------------------

_SCAN_LIMIT: Final = 50_000  # characters of prompt searched for a schema
_MAX_TRIES: Final = 300  # '{' positions tried, from the end


def find_schema_in_text(text: str) -> dict[str, Any] | None:
    """The last JSON schema written in ``text`` (a JSON object with ``properties`` or ``type``), or None.

    JSON mode carries no schema; clients describe it in the prompt (langchain's ``PydanticOutputParser``
    writes ``Here is the output schema: {...}``), so the mock reads it from there. A candidate must pass
    :func:`check_schema` (non-strict) to count.
    """
    text = text[-_SCAN_LIMIT:]
    decoder = json.JSONDecoder()
    best: tuple[int, int, dict[str, Any]] | None = None
    end = len(text)
    for _ in range(_MAX_TRIES):
        start = text.rfind("{", 0, end)
        if start < 0:
            break
        end = start
        try:
            value, stop = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        if not isinstance(value, dict) or not ("properties" in value or value.get("type") == "object"):
            continue
        try:
            schema = check_schema(value, strict=False, where="messages")
        except SchemaProblem:
            continue
        # The outermost schema of the last one written: it ends last (a nested object schema ends
        # inside it) and, among those ending there, starts first.
        if best is None or stop > best[0] or (stop == best[0] and start < best[1]):
            best = (stop, start, schema)
    return None if best is None else best[2]
