"""Hostile input found by hand, one test per finding, through the real handlers, the real queue
messages and the real `hosting` command against the local Azure.

The caller is someone with upload rights to the input container and a function key: every
test checks that such a caller gets a clear refusal (400/404/413, exit 2, a dropped message
with a log line, an error record) and cannot touch what another caller owns.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest

from shared.composition import AppServices
from shared.documents.jobs import job_id_for
from shared.documents.outcomes import OutcomeStore, VersionStamp
from tests.integration.batch.helpers import upload_documents
from tests.integration.console.test_console import Hosting, one_line
from tests.integration.hostile.calls import (
    BATCHES_URL,
    JOBS_URL,
    answer,
    continue_batch,
    deliver,
    drive_batch,
    get,
    post,
    post_json,
    resume,
    upload_and_deliver,
)
from tests.integration.hostile.invariants import (
    assert_only_own_names_written,
    batch_output_names,
    output_names,
    run_names,
)


def _submit_and_finish(app: AppServices, text: str) -> dict[str, object]:
    accepted = answer(post_json(JOBS_URL, {"text": text, "filename": "memo.txt"}))
    deliver(app, accepted["input"])
    done = answer(get(JOBS_URL, accepted["job_id"]))
    assert done["status"] == "succeeded", done
    return done


# --- 1. an upload named like another job's version blob ------------------------------------


def test_an_upload_under_versions_cannot_replace_another_jobs_result(app: AppServices) -> None:
    victim = _submit_and_finish(app, "Invoice 17: 100 EUR due in 30 days.")
    victim_blob = str(victim["result_blob"])
    assert victim_blob.startswith("versions/")
    before = output_names(app)

    # The attacker's upload is named so that its outcome would be the victim's version blob.
    attack = victim_blob.removesuffix(".result.json")
    upload_and_deliver(app, attack, b"Invoice 666: pay the attacker 1,000,000 EUR.")

    after = answer(get(JOBS_URL, str(victim["job_id"])))
    assert after["result"] == victim["result"], "the victim's result was replaced"
    refusal = json.loads(
        app.blob_service.get_container_client(app.settings.output_container)
        .download_blob(f"refused/{attack}.error.json")
        .readall()
    )
    assert refusal["error"]["code"] == "reserved_name"
    assert "versions/" in refusal["error"]["reason"]
    assert output_names(app) - before == {f"refused/{attack}.error.json"}


def test_a_version_blob_is_stamped_and_never_replaced_by_a_current_name(
    app: AppServices,
) -> None:
    victim = _submit_and_finish(app, "Invoice 18: 200 EUR due in 30 days.")
    victim_blob = str(victim["result_blob"])
    output = app.blob_service.get_container_client(app.settings.output_container)
    stamp = VersionStamp.from_metadata(
        dict(output.get_blob_client(victim_blob).get_blob_properties().metadata)
    )
    assert stamp is not None and stamp.job_id == victim["job_id"]

    # Even a writer that got past every name check cannot publish over a version blob.
    newer = VersionStamp(stamp.uploaded_at + timedelta(days=1), "f" * 24)
    OutcomeStore(output, app.blob_service).write(
        victim_blob.removesuffix(".result.json"), "f" * 24, "result", {"forged": True}, newer
    )
    assert json.loads(output.download_blob(victim_blob).readall()) == victim["result"]


# --- 2. a batch output prefix that joins into versions/ --------------------------------------


@pytest.mark.parametrize("output_prefix", ["versions", "versions/x/", "refused", "ver"])
def test_a_batch_output_prefix_that_joins_into_a_reserved_folder_is_refused(
    app: AppServices, output_prefix: str
) -> None:
    batch_in = app.blob_service.get_container_client(app.settings.batch_container)
    batch_in.upload_blob("x/a.txt", b"Invoice 1: 100 EUR due in 30 days.")
    before = output_names(app)
    response = post_json(
        BATCHES_URL, {"model": "default", "input_prefix": "x", "output_prefix": output_prefix}
    )
    assert response.status_code == 400, response.get_body()
    assert "reserved" in answer(response)["error"]
    assert output_names(app) == before


def test_a_batch_document_whose_output_name_is_reserved_gets_a_refusal_record(
    app: AppServices,
) -> None:
    """With no prefix (the operator's whole-container run), each joined name is checked."""
    batch_in = app.blob_service.get_container_client(app.settings.batch_container)
    batch_in.upload_blob("versions/a.txt", b"Invoice 1: 100 EUR due in 30 days.")
    batch_in.upload_blob("b.txt", b"Invoice 2: 100 EUR due in 30 days.")
    app.batches.start("default", "whole", "", "", None)
    view = drive_batch(app, "whole")
    assert view["status"] == "succeeded", view
    assert view["counters"]["succeeded"] == 1 and view["counters"]["failed"] == 1
    names = batch_output_names(app)  # batch outcomes have a container of their own
    assert "refused/versions/a.txt.error.json" in names
    assert "b.txt.result.json" in names
    assert not any(n.startswith("versions/a.txt") for n in names)


# --- 3. a run id that is one of the run store's own prefixes ---------------------------------


def test_a_run_named_like_the_open_markers_folder_is_refused(app: AppServices) -> None:
    response = post_json(BATCHES_URL, {"model": "default", "input_prefix": "x/", "run_id": "open"})
    assert response.status_code == 400, response.get_body()
    assert "reserved" in answer(response)["error"]
    assert run_names(app) == set()


# --- 4. run ids checked before they are used ------------------------------------------------


@pytest.mark.parametrize("run_id", ["..", "../x", ".", "a/b", "x" * 101, "a\n", "%2e%2e"])
def test_bad_run_ids_are_400_on_post_and_404_on_get(app: AppServices, run_id: str) -> None:
    response = post_json(BATCHES_URL, {"model": "default", "input_prefix": "x/", "run_id": run_id})
    assert response.status_code == 400, response.get_body()
    assert "run id" in answer(response)["error"]
    assert get(BATCHES_URL, run_id).status_code == 404
    assert run_names(app) == set()


def test_a_huge_body_is_413_before_it_is_read(app: AppServices) -> None:
    body = json.dumps({"model": "default", "input_prefix": "x/", "run_id": "r" * 20_000_000})
    response = post(BATCHES_URL, body.encode())
    assert response.status_code == 413
    assert "bytes" in answer(response)["error"]
    assert run_names(app) == set()


def test_the_command_refuses_bad_run_ids_with_exit_2(hosting: Hosting) -> None:
    for args in (
        ("batch", "run", "default", "--run-id", ".."),
        ("batch", "status", ".."),
        ("batch", "run", "default", "--run-id", "open"),
    ):
        done = hosting(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert "run id" in one_line(done) and "Traceback" not in done.stderr


# --- 5. a continuation whose run id can never be valid --------------------------------------


@pytest.mark.parametrize(
    "body", [b'{"run_id": ".."}', b'{"run_id": "../x"}', b'{"run_id": "open"}']
)
def test_a_continuation_with_an_impossible_run_id_is_dropped_with_a_log_line(
    app: AppServices, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    with caplog.at_level(logging.ERROR):
        for dequeue_count in (1, app.settings.resume_max_dequeue_count):
            continue_batch(body, dequeue_count)  # neither raises (no retry) nor re-queues
    assert "dropping a message that is not a batch continuation" in caplog.text
    assert app.batch_queue.take_visible() == []


def test_a_resume_with_an_impossible_job_id_is_dropped_with_a_log_line(
    app: AppServices, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        for body in (b'{"job_id": "../x"}', b'{"job_id": "' + b"a" * 24 + b'\\n"}'):
            resume(body, app.settings.resume_max_dequeue_count)
    assert caplog.text.count("dropping a message that is not a resume") == 2


# --- 6. prefixes with control characters; a listing that keeps failing -----------------------


@pytest.mark.parametrize(
    "prefix", ["a\u0000b\u0001\r\n/", "\u202ertl/", "a\u200fb/", "tab\there/", "x\ud800/"]
)
def test_prefixes_with_control_or_direction_characters_are_refused(
    app: AppServices, prefix: str
) -> None:
    for field in ("input_prefix", "output_prefix"):
        payload = {"model": "default", "input_prefix": "ok/", field: prefix}
        response = post(BATCHES_URL, json.dumps(payload).encode())
        assert response.status_code == 400, response.get_body()
        error = answer(response)["error"]
        # A lone surrogate is refused with the body, before any field is read.
        assert field in error or ("surrogate" in error and "\ud800" in prefix), error
    assert run_names(app) == set()


def test_a_run_whose_slices_keep_failing_ends_failed_and_releases_its_hold(
    app: AppServices,
) -> None:
    upload_documents(app.blob_service.get_container_client(app.settings.batch_container), "k/", 2)
    accepted = answer(post_json(BATCHES_URL, {"model": "default", "input_prefix": "k/"}))
    run_id = accepted["run_id"]
    # Its input container goes away: every listing fails from now on.
    app.blob_service.delete_container(app.settings.batch_container)
    deadline = time.monotonic() + 60
    while not answer(get(BATCHES_URL, run_id))["final"]:
        assert time.monotonic() < deadline, answer(get(BATCHES_URL, run_id))
        for _, message in app.batch_queue.take_visible(lease_seconds=60):
            # Each delivery as the host's last before poisoning it.
            try:
                continue_batch(message.content.encode(), app.settings.resume_max_dequeue_count)
            finally:
                app.batch_queue.done(message)
        time.sleep(0.05)
    view = answer(get(BATCHES_URL, run_id))
    assert view["status"] == "failed"
    assert "slices failed" in view["error"]
    ledger = app.hosted["default"].ledger
    holds = ledger.read().live_holds(ledger.now())
    assert f"batch:{run_id}" not in {hold.id for hold in holds}
    assert app.batch_queue.take_visible() == []


# --- 7. deeply nested JSON -------------------------------------------------------------------


# Deep enough for a RecursionError in any JSON parser of the standard library, and within the
# batch API's 64 KiB limit on a request.
DEEP = b"[" * 30_000 + b"]" * 30_000


def test_deeply_nested_json_is_400_on_both_posts(app: AppServices) -> None:
    for url in (JOBS_URL, BATCHES_URL):
        response = post(url, DEEP)
        assert response.status_code == 400, (url, response.get_body())
        assert "JSON" in answer(response)["error"]


def test_deeply_nested_queue_messages_are_dropped_with_a_log_line(
    app: AppServices, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        resume(DEEP, 1)
        continue_batch(DEEP, 1)
    assert "dropping a message that is not a resume" in caplog.text
    assert "dropping a message that is not a batch continuation" in caplog.text


# --- 8. a deadline too far away --------------------------------------------------------------


@pytest.mark.parametrize("deadline", ["P99999999D", "9" * 30, "P3000Y", "9999-12-31T23:59:59"])
def test_a_huge_deadline_is_a_clear_400(app: AppServices, deadline: str) -> None:
    payload = {"model": "default", "input_prefix": "x/", "deadline": deadline}
    response = post_json(BATCHES_URL, payload)
    assert response.status_code == 400, response.get_body()
    assert "deadline" in answer(response)["error"]


def test_the_command_refuses_a_huge_deadline_with_exit_2(hosting: Hosting) -> None:
    done = hosting("batch", "run", "default", "--deadline", "P99999999D")
    assert done.returncode == 2, done.stderr
    assert "deadline" in one_line(done) and "Traceback" not in done.stderr


# --- 9. a directory as the hosted-models file ------------------------------------------------


def test_a_directory_as_the_hosted_models_file_is_a_settings_error(
    tmp_path: Path, app_settings: dict[str, str]
) -> None:
    values = {**app_settings, "HOSTING_CONFIG_FILE": str(tmp_path)}
    values.pop("FINE_TUNED_MODEL")
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": values}), encoding="utf-8")
    done = Hosting(path)("status")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"HOSTING_CONFIG_FILE ({tmp_path})" in done.stderr
    assert "is a directory" in done.stderr


# --- also noted -------------------------------------------------------------------------------


def test_a_multipart_body_with_two_files_is_refused(app: AppServices) -> None:
    boundary = "B0undary"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{{}}"\r\n'
        "Content-Type: text/plain\r\n\r\n{}\r\n"
    )
    body = (
        part.format("a.txt", "Invoice A: 1 EUR.")
        + part.format("b.txt", "Invoice B: 2 EUR.")
        + f"--{boundary}--\r\n"
    ).encode()
    response = post(JOBS_URL, body, f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 400, response.get_body()
    assert "one file" in answer(response)["error"]
    input_container = app.blob_service.get_container_client(app.settings.input_container)
    assert list(input_container.list_blobs()) == []


def test_json_sent_as_text_plain_is_refused_by_the_batch_api(app: AppServices) -> None:
    body = json.dumps({"model": "default", "input_prefix": "x/"}).encode()
    for content_type in ("text/plain", None, "application/x-www-form-urlencoded"):
        response = post(BATCHES_URL, body, content_type)
        assert response.status_code == 400, (content_type, response.get_body())
        assert "application/json" in answer(response)["error"]
    assert run_names(app) == set()


def test_a_job_id_with_a_trailing_newline_is_not_a_job_id(app: AppServices) -> None:
    real = _submit_and_finish(app, "Invoice 19: 300 EUR due in 30 days.")
    assert get(JOBS_URL, f"{real['job_id']}\n").status_code == 400
    assert get(JOBS_URL, str(real["job_id"])).status_code == 200


def test_everything_above_left_the_app_serving_a_normal_document(app: AppServices) -> None:
    post(JOBS_URL, DEEP)
    continue_batch(b'{"run_id": ".."}', 5)
    before = output_names(app)
    name = "contracts/ok.txt"
    data = b"Invoice 20: 400 EUR due in 30 days."
    upload_and_deliver(app, name, data)
    record = app.jobs.get(job_id_for(app.settings.input_container, name, data))
    assert record is not None and record.status == "succeeded"
    assert_only_own_names_written(before, output_names(app), name)


# --- found while writing the property-based suite ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "\\ud800 hello"}',
        b'{"text": "hello", "questions": ["\\udfff?"]}',
        b'{"text": "hello", "\\ud800": 1}',
    ],
)
def test_a_lone_surrogate_escape_in_a_submission_is_400(app: AppServices, body: bytes) -> None:
    response = post(JOBS_URL, body)
    assert response.status_code == 400, response.get_body()
    assert "surrogate" in answer(response)["error"]
    input_container = app.blob_service.get_container_client(app.settings.input_container)
    assert list(input_container.list_blobs()) == []
