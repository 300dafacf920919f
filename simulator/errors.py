"""Azure-shaped error answers, raised by the state layer and rendered by the HTTP layer.

Both planes wrap errors in `{"error": {...}}`, but with different fields: ARM uses
`code`/`message`; the Azure OpenAI data plane uses `code`/`message` for gateway errors and the
OpenAI `message`/`type`/`param`/`code` shape for request validation. `ApiError` carries the
finished body so the HTTP layer never has to know which.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """An error answer: HTTP status, JSON body and extra headers."""

    def __init__(
        self,
        status: int,
        body: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body: dict[str, Any] = dict(body)
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def code(self) -> str | None:
        error = self.body.get("error")
        if isinstance(error, Mapping):
            code = error.get("code")
            return None if code is None else str(code)
        return None


def arm_error(status: int, code: str, message: str) -> ApiError:
    """An ARM (management plane) error: `{"error": {"code", "message"}}`."""
    return ApiError(status, {"error": {"code": code, "message": message}})


def gateway_error(status: int, code: str, message: str) -> ApiError:
    """A data-plane gateway error (auth, routing, throttling): `{"error": {"code", "message"}}`."""
    return ApiError(status, {"error": {"code": code, "message": message}})


def invalid_request(message: str, param: str | None, code: str | None = None) -> ApiError:
    """A data-plane request validation error in the OpenAI shape."""
    return ApiError(
        400,
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": code,
            }
        },
    )


# Bodies Azure sends for server-side failures, per plane and status.
_ARM_SERVER_ERRORS: dict[int, tuple[str, str]] = {
    500: ("InternalServerError", "Encountered internal server error. Please try again."),
    502: (
        "BadGateway",
        "The gateway received an invalid response from 'Microsoft.CognitiveServices'.",
    ),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please try again later."),
    504: (
        "GatewayTimeout",
        "The gateway did not receive a response from 'Microsoft.CognitiveServices' within the "
        "specified time period.",
    ),
}
_DATA_SERVER_ERRORS: dict[int, tuple[str, str]] = {
    500: (
        "InternalServerError",
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("BadGateway", "Bad gateway."),
    503: (
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
    ),
    504: ("Timeout", "The operation was timeout."),
}
# Refusals of the caller's identity: a token for another tenant or audience (401), or an
# identity without the role the action needs (403). Bodies as Azure sends them.
_ARM_AUTH_ERRORS: dict[int, tuple[str, str]] = {
    401: (
        "InvalidAuthenticationToken",
        "The access token is invalid.",
    ),
    403: (
        "AuthorizationFailed",
        "The client 'app-identity' with object id '00000000-0000-0000-0000-000000000001' does "
        "not have authorization to perform action "
        "'Microsoft.CognitiveServices/accounts/deployments/write' over scope '/subscriptions/"
        "...' or the scope is invalid. If access was recently granted, please refresh your "
        "credentials.",
    ),
}
_DATA_AUTH_ERRORS: dict[int, tuple[str, str]] = {
    401: (
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API endpoint "
        "for your resource.",
    ),
    403: (
        "PermissionDenied",
        "The principal `00000000-0000-0000-0000-000000000001` lacks the required data action "
        "`Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action` to "
        "perform `POST /openai/deployments/{deployment-id}/chat/completions` operation.",
    ),
}
INJECTABLE_STATUSES = frozenset(_ARM_SERVER_ERRORS) | frozenset(_ARM_AUTH_ERRORS)


def server_error(plane: str, status: int) -> ApiError:
    """The error Azure answers with for `status` (401, 403, 500, 502, 503, 504) on `plane`."""
    if status in _ARM_AUTH_ERRORS:
        auth = _ARM_AUTH_ERRORS if plane == "management" else _DATA_AUTH_ERRORS
        code, message = auth[status]
        return ApiError(status, {"error": {"code": code, "message": message}})
    table = _ARM_SERVER_ERRORS if plane == "management" else _DATA_SERVER_ERRORS
    code, message = table.get(status, table[500])
    return ApiError(status, {"error": {"code": code, "message": message}})
