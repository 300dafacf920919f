"""Azure Functions triggers. Each handler turns its input into one call into `shared`.

No SDK calls and no business rules here: settings and clients are built lazily by
`shared.composition.get_services()` on the first invocation, so importing this module needs
no settings, opens no connection and imports none of the Azure and OpenAI SDKs (the host
indexes the functions of every new instance before its first trigger; the composition root
and the SDKs load with the first invocation that needs them).

The HTTP handlers are async and do their work on the API's own threads
(`shared.api.threads`), never in the worker's pool the document and timer triggers share.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from shared.api.portal import portal_pages
from shared.api.threads import on_api_threads
from shared.batch.messages import ContinueMessage
from shared.documents.parking import ResumeMessage

if TYPE_CHECKING:
    from shared.composition import AppServices

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
logger = logging.getLogger(__name__)


def get_services() -> AppServices:
    """The app's services, built on first use (see `shared.composition.get_services`)."""
    # Imported here, not above: the composition root imports every SDK, which would make
    # importing this module (the host's indexing of a new instance) seconds slower.
    from shared.composition import get_services as built  # noqa: PLC0415

    return built()


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
    outcome = get_services().engine.process_blob(container, blob_name, document.read())
    logger.info("document %s: job %s %s", document.name, outcome.job_id, outcome.status)


@app.function_name("resume_job")
@app.queue_trigger(arg_name="message", queue_name="%RESUME_QUEUE%", connection="DocumentStorage")
def resume_job(message: func.QueueMessage) -> None:
    """A parked job's time came: resume it (or park it again)."""
    services = get_services()
    try:
        resume = ResumeMessage.decode(message.get_body().decode("utf-8", errors="replace"))
    except ValueError as bad:
        logger.error("dropping a message that is not a resume: %s", bad)
        return
    try:
        outcome = services.engine.resume(resume.job_id)
    except Exception as error:
        if message.dequeue_count is not None and (
            message.dequeue_count >= services.settings.resume_max_dequeue_count
        ):
            # The host would move it to the poison queue: end the job with a record instead.
            services.engine.fail_job(
                resume.job_id,
                "resume_failed",
                f"resuming the job failed {message.dequeue_count} times; last: "
                f"{type(error).__name__}: {error}. Upload the document again to retry it.",
            )
            return
        raise
    logger.info("resumed job %s: %s", outcome.job_id, outcome.status)


@app.function_name("submit_job")
@app.route(route="jobs", methods=[func.HttpMethod.POST])
async def submit_job(req: func.HttpRequest) -> func.HttpResponse:
    """The portal's submit button: store the document and answer 202 with the job's URL."""
    return await on_api_threads(lambda: get_services().jobs_api.submit(req))


@app.function_name("get_job")
@app.route(route="jobs/{job_id}", methods=[func.HttpMethod.GET])
async def get_job(req: func.HttpRequest) -> func.HttpResponse:
    """The job's status and, once done, its result."""
    job_id = req.route_params.get("job_id", "")
    return await on_api_threads(lambda: get_services().jobs_api.status(job_id))


@app.function_name("start_batch")
@app.route(route="batches", methods=[func.HttpMethod.POST])
async def start_batch(req: func.HttpRequest) -> func.HttpResponse:
    """Start a batch run over a prefix of the batch container; 202 with the run's URL."""
    return await on_api_threads(lambda: get_services().batches_api.start(req))


@app.function_name("get_batch")
@app.route(route="batches/{run_id}", methods=[func.HttpMethod.GET])
async def get_batch(req: func.HttpRequest) -> func.HttpResponse:
    """A batch run's progress and, once it ended, its summary."""
    run_id = req.route_params.get("run_id", "")
    return await on_api_threads(lambda: get_services().batches_api.status(run_id))


@app.function_name("continue_batch")
@app.queue_trigger(arg_name="message", queue_name="%BATCH_QUEUE%", connection="DocumentStorage")
def continue_batch(message: func.QueueMessage) -> None:
    """One slice of a batch run (shorter than the function timeout); it queues the next."""
    try:
        continued = ContinueMessage.decode(message.get_body().decode("utf-8", errors="replace"))
    except ValueError as bad:
        logger.error("dropping a message that is not a batch continuation: %s", bad)
        return
    services = get_services()
    try:
        outcome = services.batches.continue_run(continued.run_id)
    except Exception as error:
        if message.dequeue_count is not None and (
            message.dequeue_count >= services.settings.resume_max_dequeue_count
        ):
            # The host would poison the message and the run would never continue: queue a
            # fresh continuation for later instead (its marker keeps the work done), unless
            # this happened too often already and the run ends failed, its hold released.
            logger.exception("batch %s: slices keep failing", continued.run_id)
            if services.batches.slices_failed(
                continued.run_id, f"{type(error).__name__}: {str(error)[:300]}"
            ):
                return
            services.batch_queue.schedule(
                continued.run_id,
                delay_seconds=services.settings.park_max_seconds,
                reason="the last slices failed",
            )
            return
        raise
    if outcome is None:
        logger.error("batch run %s does not exist; dropping its message", continued.run_id)
        return
    logger.info("batch %s: %s (%s)", continued.run_id, outcome.run.status, outcome.note)


@app.function_name("sweep_stalled_batches")
@app.timer_trigger(schedule="%REAPER_SCHEDULE%", arg_name="timer", run_on_startup=False)
def sweep_stalled_batches(timer: func.TimerRequest) -> None:
    """Make sure every batch run that is not final has a next slice coming."""
    resumed = get_services().batches.sweep_stalled()
    if resumed:
        logger.warning("sweeper queued %d stalled batch run(s): %s", len(resumed), resumed)


@app.function_name("sweep_stalled_jobs")
@app.timer_trigger(schedule="%REAPER_SCHEDULE%", arg_name="timer", run_on_startup=False)
def sweep_stalled_jobs(timer: func.TimerRequest) -> None:
    """Resume jobs whose worker died or whose resume is overdue: no document is left behind."""
    report = get_services().sweeper.run()
    if report.resumed:
        logger.warning("sweeper resumed %d stalled job(s)", len(report.resumed))


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


@app.function_name("reconcile_schedules")
@app.timer_trigger(schedule="%SCHEDULE_RECONCILE_SCHEDULE%", arg_name="timer", run_on_startup=False)
def reconcile_schedules(timer: func.TimerRequest) -> None:
    """Bring window holds, provisioning and due batch runs to what the clock wants now.

    Level-triggered: a late (past due), missed or doubled tick converges to the same state.
    """
    if timer.past_due:
        logger.info("schedule reconciler timer is past due")
    services = get_services()
    report = services.schedules.run(f"schedules:{services.instance}")
    for outcome in report.models:
        if not outcome.acted:
            continue  # most ticks change nothing; the ledger and `hosting schedule` show why
        plan = outcome.plan
        logger.info(
            "schedules: %s: holds placed %s, ended %s; %s%s",
            outcome.model,
            list(plan.place) if plan else "?",
            list(plan.end) if plan else "?",
            outcome.error or outcome.provisioning or ("serving" if outcome.serving else "idle"),
            f"; batch runs {', '.join(outcome.batches_started)}" if outcome.batches_started else "",
        )


@app.function_name("portal")
@app.route(
    route="portal/{*asset}", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.ANONYMOUS
)
async def portal(req: func.HttpRequest) -> func.HttpResponse:
    """The portal's pages (static files; they hold no data, so no key is needed for them)."""
    return await on_api_threads(lambda: portal_pages().serve(req))


@app.function_name("list_profiles")
@app.route(route="profiles", methods=[func.HttpMethod.GET])
async def list_profiles(req: func.HttpRequest) -> func.HttpResponse:
    """The processing profiles a document may be submitted with, and the submission limits."""
    # The lambda defers get_services(): its first call builds the app, off the event loop.
    return await on_api_threads(lambda: get_services().profiles_api.list())  # noqa: PLW0108


@app.function_name("operations")
@app.route(route="ops", methods=[func.HttpMethod.GET])
async def operations(req: func.HttpRequest) -> func.HttpResponse:
    """Each hosted model's deployment, holds and schedule, and the batch runs under way."""
    return await on_api_threads(lambda: get_services().operations_api.get())  # noqa: PLW0108


@app.function_name("get_report")
@app.route(route="report", methods=[func.HttpMethod.GET])
async def get_report(req: func.HttpRequest) -> func.HttpResponse:
    """The savings report (JSON, or its chart with format=png|svg); see shared/api/report.py."""
    return await on_api_threads(lambda: get_services().report_api.get(req))


@app.function_name("sweep_lost_uploads")
@app.timer_trigger(schedule="%REAPER_SCHEDULE%", arg_name="timer", run_on_startup=False)
def sweep_lost_uploads(timer: func.TimerRequest) -> None:
    """Process input blobs that have no job after INTAKE_GRACE_SECONDS: their event was lost."""
    report = get_services().intake.run()
    if report.recovered:
        logger.warning(
            "intake sweep processed %d document(s) whose blob event never arrived: jobs %s",
            len(report.recovered),
            ", ".join(report.recovered),
        )
