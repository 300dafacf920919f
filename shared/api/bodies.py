"""Reading an HTTP request's body as the APIs expect it, whatever a caller sends.

One place for what every JSON endpoint refuses the same way: a body over its size limit
(413, before it is parsed), a Content-Type other than JSON, a body that is not JSON, is nested
past the parser's depth or holds a lone surrogate escape (400, never a 500 from a
RecursionError or an encoding error).
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func


class BodyInvalid(Exception):
    """The body cannot be used; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def content_type(req: func.HttpRequest) -> str:
    """The media type of the request, lower case, without its parameters ('' when none)."""
    return (req.headers.get("content-type") or "").split(";")[0].strip().lower()


def limited_body(req: func.HttpRequest, max_bytes: int, what: str) -> bytes:
    body = req.get_body() or b""
    if len(body) > max_bytes:
        raise BodyInvalid(
            413, f"the request is {len(body):,} bytes; the limit is {max_bytes:,} bytes {what}"
        )
    return body


def json_value(body: bytes) -> Any:
    """The body parsed as JSON; `BodyInvalid` (400) says what is wrong."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BodyInvalid(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise BodyInvalid(400, "the body is not usable JSON: it is nested too deeply") from None
    except ValueError as error:  # e.g. an integer past Python's digit limit
        raise BodyInvalid(400, f"the body is not usable JSON: {error}") from None
    if _has_lone_surrogate(value):
        # JSON may escape half of a UTF-16 pair (`"\\ud800"`), which is no text: it could be
        # neither stored as UTF-8 nor sent to the model.
        raise BodyInvalid(
            400, "the body holds a lone UTF-16 surrogate escape (such as \\ud800): not text"
        )
    return value


def _has_lone_surrogate(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def json_object(req: func.HttpRequest, max_bytes: int, what: str) -> dict[str, Any]:
    """A JSON object sent as application/json, within `max_bytes`."""
    body = limited_body(req, max_bytes, what)
    if content_type(req) != "application/json":
        raise BodyInvalid(
            400,
            f"unsupported Content-Type {content_type(req) or '(none)'!r}: send the body as "
            "application/json",
        )
    payload = json_value(body)
    if not isinstance(payload, dict):
        raise BodyInvalid(400, "the body must be a JSON object")
    return payload
