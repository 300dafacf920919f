"""Strict decoding of JSON request bodies, shared by the management, data and admin planes.

Python's `json.loads` accepts what Azure's front ends refuse and fails in ways a handler does
not expect: `NaN`, `Infinity` and `1e999` decode to non-finite floats (which later crash
arithmetic such as `math.ceil`, or come back out as invalid JSON), and a body nested tens of
thousands of levels deep raises `RecursionError`. `decode_body` turns all of these into one
`BodyNotJson` error, which each plane renders in its own 400 shape.

Nesting is limited to `MAX_NESTING_DEPTH` levels, the default limit of the System.Text.Json
reader behind ASP.NET Core, so no validator or answer builder ever walks a deeper value.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_NESTING_DEPTH = 64


class BodyNotJson(ValueError):
    """The body is not JSON the simulator (like Azure) accepts; the message says why."""


def _reject_constant(name: str) -> Any:
    raise BodyNotJson(f"'{name}' is not a valid JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyNotJson(f"the number {text[:40]} is outside the range of a double")
    return value


def decode_body(raw: bytes | str) -> Any:
    """The decoded body; `BodyNotJson` for invalid, non-finite or too deeply nested JSON."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except BodyNotJson:
        raise
    except RecursionError:
        raise BodyNotJson(f"the JSON is nested more than {MAX_NESTING_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BodyNotJson(str(error)) from None
    if nesting_depth(value) > MAX_NESTING_DEPTH:
        raise BodyNotJson(f"the JSON is nested more than {MAX_NESTING_DEPTH} levels deep")
    return value


def nesting_depth(value: Any) -> int:
    """How many arrays/objects deep `value` goes (a scalar is 0); iterative, so never recurses."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_NESTING_DEPTH:
                return deepest  # no need to walk the rest
        stack.extend((child, depth) for child in children)
    return deepest


def encode(value: Any) -> str:
    """JSON text for an answer; refuses NaN and infinities rather than emit invalid JSON."""
    return json.dumps(value, allow_nan=False)
