"""`GET /api/profiles`: the processing profiles a document may be submitted with.

The portal's profile picker is filled from it: each profile of the hosted-models file (or of
PROCESSING_PROFILES) with the hosted model and deployment it runs on and its own questions,
plus the default profile and the limits a submission must meet, so the page can say what is
accepted before anything is sent. Prompts are not shown: they are the team's configuration,
not something a submitter chooses.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared.api.jobs import json_response
from shared.catalog import Catalog
from shared.documents.decoding import SUPPORTED_EXTENSIONS


def profiles_view(
    catalog: Catalog, *, default_profile: str, max_document_bytes: int, max_submit_bytes: int
) -> dict[str, Any]:
    profiles = []
    for name in sorted(catalog.profiles):
        profile = catalog.profiles[name]
        model = catalog.model_for(profile)
        profiles.append(
            {
                "name": name,
                "model": model.name,
                "deployment": model.deployment,
                "questions": list(profile.questions),
                "structured_output": profile.output_schema is not None,
            }
        )
    return {
        "profiles": profiles,
        # None when no profile has that name: then every submission must name one.
        "default_profile": default_profile if default_profile in catalog.profiles else None,
        "limits": {
            "extensions": list(SUPPORTED_EXTENSIONS),
            "max_document_bytes": max_document_bytes,
            "max_submit_bytes": max_submit_bytes,
        },
    }


class ProfilesApi:
    """Handles GET /api/profiles."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        default_profile: str,
        max_document_bytes: int,
        max_submit_bytes: int,
    ) -> None:
        self._view = profiles_view(
            catalog,
            default_profile=default_profile,
            max_document_bytes=max_document_bytes,
            max_submit_bytes=max_submit_bytes,
        )

    def list(self) -> func.HttpResponse:
        return json_response(self._view, 200)
