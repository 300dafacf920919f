"""Counting the app's storage and management round trips at the SDK's HTTP pipeline.

`RoundTripCounter` is an azure-core policy the composition root adds to every storage (blob,
queue) and management client it builds (`build_services(..., request_policy=...)`). It sees
each request after the SDK's retry policy, so a retried request counts once per attempt, as
a round trip does, and labels it by what it touches (the job record, the open-job marker, the
ledger, an outcome blob, ...) and how (a create, a replace under an ETag, a read).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.rest import HttpRequest

from shared.documents.job_store import OPEN_PREFIX, PAYLOAD_PREFIX
from shared.names import VERSIONS_PREFIX

# What a blob in each of the app's containers is, by container role and name prefix.
_PREFIXED = {
    "jobs": ((OPEN_PREFIX, "open-job marker"), (PAYLOAD_PREFIX, "parked payload")),
    "output": ((VERSIONS_PREFIX, "outcome, own version"),),
}
_PLAIN = {
    "jobs": "job record",
    "output": "outcome, current name",
    "ledger": "ledger (holds)",
    "input": "input document",
}


def _verb(request: HttpRequest) -> str:
    method = request.method.upper()
    headers = {key.lower(): value for key, value in request.headers.items()}
    if method == "HEAD":
        return "read properties"
    if method == "GET":
        return "read"
    if method == "DELETE":
        return "delete"
    if method == "PUT":
        if headers.get("if-none-match") == "*":
            return "create if absent"
        if "if-match" in headers:
            return "replace if unchanged"
        return "write"
    return method


class RoundTripCounter(SansIOHTTPPolicy[HttpRequest, object]):
    """Counts requests by `(service, what, how)` label; safe from many threads."""

    def __init__(self, roles: Mapping[str, str]) -> None:
        """`roles` names each container and queue: {"jobs-1a2b": "jobs", ...}."""
        super().__init__()
        self._roles = dict(roles)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        label = self.label(request.http_request)
        with self._lock:
            self._counts[label] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    def label(self, request: HttpRequest) -> str:
        url = urlsplit(request.url)
        path = unquote(url.path)
        if "/subscriptions/" in path:
            tail = path.rsplit("/providers/", 1)[-1]
            kind = "deployments" if "/deployments" in tail else tail.split("/", 1)[0]
            return f"management: {request.method.upper()} {kind}"
        parts = [p for p in path.split("/") if p]
        # Azurite puts the account first in the path; Azure puts it in the host name.
        if parts and parts[0] == "devstoreaccount1":
            parts = parts[1:]
        if not parts:
            return f"storage: {request.method.upper()} account"
        container, name = parts[0], "/".join(parts[1:])
        role = self._roles.get(container, "other")
        query = parse_qs(url.query)
        if role == "queue":
            return f"queue: {request.method.upper()} {'messages' if name else 'queue'}"
        if not name:
            comp = query.get("comp", query.get("restype", ["container"]))[0]
            return f"{role} container: {request.method.upper()} {comp}"
        what = _PLAIN.get(role, role)
        for prefix, described in _PREFIXED.get(role, ()):
            if name.startswith(prefix):
                what = described
        return f"{what}: {_verb(request)}"


def per_document(before: Counter[str], after: Counter[str]) -> Counter[str]:
    """The round trips made between two snapshots."""
    return Counter({k: v for k, v in (after - before).items() if v})
