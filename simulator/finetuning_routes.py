"""HTTP routes of the simulated files and fine-tuning endpoints of the Azure OpenAI data plane.

`/openai/files` (upload, list, get, content, delete) and `/openai/fine_tuning/jobs` (create,
list, get, cancel, events, checkpoints), with `api-version` and the same credentials as chat.
The rules are `simulator.finetuning.FineTuningStore`'s; this module only speaks HTTP. The
store lives in the app (`FINETUNING_KEY`) and shares the simulator's clock; `/admin/reset`
clears it too.
"""

from __future__ import annotations

from aiohttp import web

from simulator.dataplane import _check_credentials, resource_not_found
from simulator.errors import invalid_request
from simulator.faults import Plane
from simulator.finetuning import FineTuningStore
from simulator.http_common import apply_plane_faults, json_answer, read_json_object, state_of

FINETUNING_KEY = web.AppKey("finetuning_store", FineTuningStore)
DEFAULT_PAGE = 20
MAX_PAGE = 100


async def _admit(request: web.Request) -> tuple[FineTuningStore, float]:
    state = state_of(request)
    await apply_plane_faults(state, Plane.DATA)
    if not request.query.get("api-version", "").strip():
        raise resource_not_found()
    _check_credentials(request, state)
    return request.app[FINETUNING_KEY], state.now()


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_PAGE))
    try:
        limit = int(raw)
    except ValueError:
        raise invalid_request(f"Invalid value for limit: '{raw}'.", "limit") from None
    if not 1 <= limit <= MAX_PAGE:
        raise invalid_request(f"limit must be between 1 and {MAX_PAGE}.", "limit")
    return limit


async def upload_file(request: web.Request) -> web.Response:
    store, now = await _admit(request)
    form = await request.post()
    upload = form.get("file")
    purpose = form.get("purpose")
    if not isinstance(upload, web.FileField):
        raise invalid_request("Missing required parameter: 'file'.", "file")
    if not isinstance(purpose, str):
        raise invalid_request("Missing required parameter: 'purpose'.", "purpose")
    content = upload.file.read()
    return json_answer(store.upload(upload.filename, purpose, content, now), status=201)


async def list_files(request: web.Request) -> web.Response:
    store, now = await _admit(request)
    return json_answer(store.list_files(now))


async def get_file(request: web.Request) -> web.Response:
    store, now = await _admit(request)
    return json_answer(store.file_view(request.match_info["file_id"], now))


async def file_content(request: web.Request) -> web.Response:
    store, _ = await _admit(request)
    stored = store.file(request.match_info["file_id"])
    return web.Response(body=stored.content, content_type="application/octet-stream")


async def delete_file(request: web.Request) -> web.Response:
    store, _ = await _admit(request)
    return json_answer(store.delete_file(request.match_info["file_id"]))


async def create_job(request: web.Request) -> web.Response:
    store, now = await _admit(request)
    body = await read_json_object(request)
    return json_answer(store.create_job(body, now), status=201)


async def list_jobs(request: web.Request) -> web.Response:
    store, now = await _admit(request)
    return json_answer(store.list_jobs(now, _limit(request), request.query.get("after")))


async def get_job(request: web.Request) -> web.Response:
    store, now = await _admit(request)
    return json_answer(store.job_view(request.match_info["job_id"], now))


async def cancel_job(request: web.Request) -> web.Response:
    store, now = await _admit(request)
    return json_answer(store.cancel(request.match_info["job_id"], now))


async def job_events(request: web.Request) -> web.Response:
    store, now = await _admit(request)
    return json_answer(
        store.events(request.match_info["job_id"], now, _limit(request), request.query.get("after"))
    )


async def job_checkpoints(request: web.Request) -> web.Response:
    store, now = await _admit(request)
    return json_answer(store.checkpoints(request.match_info["job_id"], now, _limit(request)))


def add_routes(app: web.Application, store: FineTuningStore | None = None) -> None:
    """Register before the data plane's catch-all `/openai/{tail}` route."""
    app[FINETUNING_KEY] = store or FineTuningStore()
    router = app.router
    router.add_post("/openai/files", upload_file)
    router.add_get("/openai/files", list_files)
    router.add_get("/openai/files/{file_id}", get_file)
    router.add_get("/openai/files/{file_id}/content", file_content)
    router.add_delete("/openai/files/{file_id}", delete_file)
    router.add_post("/openai/fine_tuning/jobs", create_job)
    router.add_get("/openai/fine_tuning/jobs", list_jobs)
    router.add_get("/openai/fine_tuning/jobs/{job_id}", get_job)
    router.add_post("/openai/fine_tuning/jobs/{job_id}/cancel", cancel_job)
    router.add_get("/openai/fine_tuning/jobs/{job_id}/events", job_events)
    router.add_get("/openai/fine_tuning/jobs/{job_id}/checkpoints", job_checkpoints)
