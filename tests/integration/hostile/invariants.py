"""What a caller may have written: the names a document or a run owns in the output container.

A snapshot maps each blob name to its ETag, so a blob rewritten in place counts as written.
"""

from __future__ import annotations

import re

from shared.composition import AppServices
from shared.names import refusal_record_name

Snapshot = dict[str, str]


def output_snapshot(app: AppServices) -> Snapshot:
    """Both output containers: the ad-hoc one by bare name, the batch one's names prefixed
    with its container (a write to either counts)."""
    output = app.blob_service.get_container_client(app.settings.output_container)
    snapshot = {blob.name: str(blob.etag) for blob in output.list_blobs()}
    batch = app.settings.batch_output_container
    snapshot.update({f"{batch}:{name}": etag for name, etag in _etags(app, batch).items()})
    return snapshot


def batch_output_names(app: AppServices) -> set[str]:
    return set(_etags(app, app.settings.batch_output_container))


def _etags(app: AppServices, container: str) -> Snapshot:
    blobs = app.blob_service.get_container_client(container)
    return {blob.name: str(blob.etag) for blob in blobs.list_blobs()}


def output_names(app: AppServices) -> set[str]:
    return set(output_snapshot(app))


def run_names(app: AppServices) -> set[str]:
    runs = app.blob_service.get_container_client(app.settings.batch_runs_container)
    return {blob.name for blob in runs.list_blobs()}


def written(before: Snapshot, after: Snapshot) -> set[str]:
    """Names created, changed or deleted between two snapshots."""
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def owned_by_document(name: str, output_name: str) -> bool:
    """Whether `name` is one of the outcome names of the document whose outcomes are named
    `output_name` (its current outcome, its versions' outcomes, or a refusal record)."""
    own_version = re.fullmatch(
        rf"versions/{re.escape(output_name)}/[0-9a-f]{{24}}\.(result|error)\.json", name
    )
    return (
        name in (f"{output_name}.result.json", f"{output_name}.error.json")
        or own_version is not None
        or name == refusal_record_name(output_name)
    )


def assert_only_own_names_written(
    before: Snapshot | set[str], after: Snapshot | set[str], *output_names_owned: str
) -> None:
    if isinstance(before, set) or isinstance(after, set):
        changed = set(after) ^ set(before)
    else:
        changed = written(before, after)
    foreign = {
        name
        for name in changed
        if not any(owned_by_document(name, own) for own in output_names_owned)
    }
    assert not foreign, f"written outside the caller's own names: {sorted(foreign)}"
