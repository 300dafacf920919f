"""The `upload` command: put documents where the app picks them up, without SDK code.

Without `--batch`, each file goes to the input container (the blob trigger processes it), under
a folder named like `--profile` when one is given, since that is how an uploaded blob picks its
profile. With `--batch PREFIX`, each file goes under PREFIX in the batch container, where a
batch run (`hosting batch run MODEL --input-prefix PREFIX`, or a declared batch schedule)
finds it. The job id printed for an ad-hoc upload is the one the app will give it (the blob's
path and content decide it), so `hosting job ID` follows it once the app has picked it up.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from azure.core.exceptions import AzureError

from shared.console.display import print_json, step_progress
from shared.console.errors import ConsoleError, ExitCode
from shared.console.session import PROG, JsonOption, Session, session_of
from shared.documents.jobs import job_id_for


def register(app: typer.Typer) -> None:
    """Add this module's command to the console."""
    app.command()(upload)


@dataclass(frozen=True)
class Uploaded:
    file: str
    container: str
    blob: str
    job_id: str | None  # None for a batch document: the run gives it its outcome
    error: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "file": self.file,
            "container": self.container,
            "blob": self.blob,
            "job_id": self.job_id,
            "error": self.error,
        }


def upload(
    ctx: typer.Context,
    *,
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            readable=True,
            help="The documents to upload.",
        ),
    ],
    profile: Annotated[
        str | None,
        typer.Option(
            metavar="PROFILE",
            help="Process them with this profile: they go under a folder named like it. "
            "Default: DEFAULT_PROFILE.",
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            metavar="PREFIX",
            help="Put them under PREFIX in BATCH_CONTAINER for a batch run instead of the "
            "input container (e.g. 'contracts/2026-12-03/').",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Upload FILE... to the input container (processed at once) or a batch prefix."""
    session = session_of(ctx)
    settings = session.settings()
    if batch is not None and profile is not None:
        raise ConsoleError(
            "--profile and --batch together: a batch run takes its profile from the model it "
            f"runs on (`{PROG} batch run MODEL --input-prefix PREFIX`)",
            ExitCode.USAGE,
        )
    names = [path.name for path in files]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConsoleError(
            f"two files would be the same blob: {', '.join(twice)}; upload them separately "
            "or rename one",
            ExitCode.USAGE,
        )
    if batch is not None:
        prefix = batch.strip("/")
        if not prefix:
            raise ConsoleError("--batch needs a prefix, e.g. 'contracts/'", ExitCode.USAGE)
        container, folder = settings.batch_container, f"{prefix}/"
    else:
        profiles = settings.catalog.profiles
        if profile is not None and profile not in profiles:
            known = ", ".join(sorted(profiles))
            raise ConsoleError(
                f"unknown processing profile {profile!r}; the profiles are: {known}",
                ExitCode.USAGE,
            )
        container, folder = settings.input_container, f"{profile}/" if profile else ""
    done = _upload_all(session, files, container, folder, ad_hoc=batch is None)
    failed = [item for item in done if item.error]
    if json_output:
        print_json([item.to_json() for item in done])
    else:
        for item in done:
            if item.error is None:
                job = f" (job {item.job_id})" if item.job_id else ""
                session.out.print(f"{item.file} -> {item.container}/{item.blob}{job}", markup=False)
        _say_what_next(session, done, batch=folder if batch is not None else None)
    if failed:
        for item in failed:
            session.err.print(f"{item.file}: not uploaded: {item.error}", markup=False)
        raise ConsoleError(f"{len(failed)} of {len(done)} file(s) not uploaded", ExitCode.FAILED)


def _upload_all(
    session: Session, files: list[Path], container: str, folder: str, *, ad_hoc: bool
) -> list[Uploaded]:
    client = session.services().blob_service.get_container_client(container)
    done: list[Uploaded] = []
    progress = step_progress(session.err, transient=True)
    task = progress.add_task(f"uploading to {container}/{folder}", total=len(files))
    # The bar only where it can be redrawn, and only when there is more than one file.
    with progress if session.err.is_terminal and len(files) > 1 else nullcontext():
        for path in files:
            blob = f"{folder}{path.name}"
            try:
                data = path.read_bytes()
                client.upload_blob(blob, data, overwrite=True)
            except OSError as error:
                reason = error.strerror or str(error)
                done.append(Uploaded(str(path), container, blob, None, reason))
            except AzureError as error:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else "failed"
                done.append(Uploaded(str(path), container, blob, None, reason))
            else:
                job_id = job_id_for(container, blob, data) if ad_hoc else None
                done.append(Uploaded(str(path), container, blob, job_id))
            progress.advance(task)
    return done


def _say_what_next(session: Session, done: list[Uploaded], *, batch: str | None) -> None:
    uploaded = [item for item in done if item.error is None]
    if not uploaded:
        return
    if batch is not None:
        hint = f"run them with `{PROG} batch run MODEL --input-prefix {batch}`"
    else:
        hint = f"the app processes them now; `{PROG} job ID` or `{PROG} jobs` shows how they go"
    session.err.print(f"{len(uploaded)} file(s) uploaded; {hint}", markup=False)
