"""Azure Functions triggers. Each handler turns its input into one call into `shared`.

No SDK calls and no business rules here: settings and clients are built lazily by
`shared.composition.get_services()` on the first invocation, so importing this module needs
no settings and opens no connection.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.composition import get_services
from shared.documents.engine import RetryLater

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
logger = logging.getLogger(__name__)


# Event Grid source: the only one Flex Consumption supports, and a blob is delivered within
# seconds instead of after a container scan. Azure needs an Event Grid subscription to the blobs
# webhook for it (infra/hooks/postdeploy.*); the local runner polls the container instead.
@app.function_name("process_uploaded_document")
@app.blob_trigger(
    arg_name="document",
    path="%INPUT_CONTAINER%/{name}",
    connection="DocumentStorage",
    source=func.BlobSource.EVENT_GRID,
)
def process_uploaded_document(document: func.InputStream) -> None:
    """A document landed in the input container: process it on the on-demand deployment."""
    container, _, blob_name = (document.name or "").partition("/")
    try:
        outcome = get_services().engine.process_blob(container, blob_name, document.read())
    except RetryLater as later:
        # Raising makes the host deliver the blob again; the job record already says why.
        logger.warning("document %s will be retried: %s", document.name, later)
        raise
    logger.info("document %s: job %s %s", document.name, outcome.job_id, outcome.status)


@app.function_name("submit_job")
@app.route(route="jobs", methods=[func.HttpMethod.POST])
def submit_job(req: func.HttpRequest) -> func.HttpResponse:
    """The portal's submit button: store the document and answer 202 with the job's URL."""
    return get_services().jobs_api.submit(req)


@app.function_name("get_job")
@app.route(route="jobs/{job_id}", methods=[func.HttpMethod.GET])
def get_job(req: func.HttpRequest) -> func.HttpResponse:
    """The job's status and, once done, its result."""
    return get_services().jobs_api.status(req.route_params.get("job_id", ""))


@app.function_name("reap_idle_deployments")
@app.timer_trigger(schedule="%REAPER_SCHEDULE%", arg_name="timer", run_on_startup=False)
def reap_idle_deployments(timer: func.TimerRequest) -> None:
    """Delete owned deployments that no hold needs (the fast path's backstop)."""
    if timer.past_due:
        logger.info("reaper timer is past due")
    services = get_services()
    for report in services.reaper.run(f"reaper:{services.instance}"):
        logger.info(
            "reaper: %s %s (%s)",
            report.deployment,
            "deleted" if report.deleted else "kept",
            report.reason,
        )
