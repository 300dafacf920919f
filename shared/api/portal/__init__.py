"""The portal's pages: plain HTML, CSS and JavaScript files served from `static/` as they are.

No build step and nothing from the internet: what is in `static/` is what the browser gets.
The pages hold no data and no secret, so their route is anonymous; everything they show comes
from the function-key API routes (`/api/jobs`, `/api/profiles`, `/api/ops`, `/api/report`),
which the pages call with the key a person typed, in the `x-functions-key` header.

Only the files present in `static/` at start are served (a name is looked up, never joined
into a path), each with a Content-Security-Policy that allows this origin alone, and an ETag
so a reload costs a 304.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import azure.functions as func

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

# The pages load their scripts and styles from this origin only and talk to this origin only;
# blob: and data: images are the result downloads and the report's chart.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time (cheap with the ETag): a new deployment's pages show at once.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets(folder: Path = STATIC_DIR) -> dict[str, Asset]:
    assets = {}
    for path in sorted(folder.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[path.name] = Asset(body, content_type, etag)
    return assets


class PortalPages:
    """Answers GET /api/portal/{asset}."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        self._assets = assets

    def serve(self, req: func.HttpRequest) -> func.HttpResponse:
        asset = (req.route_params.get("asset") or "").strip("/")
        if not asset:
            path = req.url.split("?", 1)[0].split("#", 1)[0]
            if not path.endswith("/"):
                # The pages refer to their files relatively: /api/portal must be /api/portal/.
                last = path.rstrip("/").rsplit("/", 1)[-1]
                return func.HttpResponse(status_code=308, headers={"Location": f"{last}/"})
            asset = INDEX
        found = self._assets.get(asset)
        if found is None:
            known = ", ".join(sorted(self._assets))
            return func.HttpResponse(
                f"no portal page {asset!r}; the portal serves: {known}",
                status_code=404,
                mimetype="text/plain",
                headers=SECURITY_HEADERS,
            )
        headers = {**SECURITY_HEADERS, "ETag": found.etag, "Content-Type": found.content_type}
        if found.etag in (req.headers.get("if-none-match") or ""):
            return func.HttpResponse(status_code=304, headers=headers)
        return func.HttpResponse(found.body, status_code=200, headers=headers)


@cache
def portal_pages() -> PortalPages:
    """The pages, read once per process (they change only with a deployment)."""
    return PortalPages(load_assets())
