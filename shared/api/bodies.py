"""Reading an HTTP request's body as the APIs expect it, whatever a caller sends.

One place for what every JSON endpoint refuses the same way: a body over its size limit
(413, before it is parsed), a Content-Type other than JSON, a body that is not JSON or is
nested past the parser's depth (400, never a 500 from a RecursionError).
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
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BodyInvalid(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise BodyInvalid(400, "the body is not usable JSON: it is nested too deeply") from None
    except ValueError as error:  # e.g. an integer past Python's digit limit
        raise BodyInvalid(400, f"the body is not usable JSON: {error}") from None


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
