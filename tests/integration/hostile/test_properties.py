"""Property-based tests (Hypothesis) over every external input of the app.

Generated HTTP bodies, headers and route parameters, input blob names and contents, queue
messages, hosted-models files and command arguments go through the real handlers, the real
settings loading and the real command against the local Azure. For every one:

- no 500 and no exception out of a handler (the host would answer 500 or retry the message
  into the poison queue), no traceback from the command;
- nothing written outside the caller's own names (a submission's own input blob, a run's own
  records, a document's own outcomes);
- and, after each property, the app still serves a normal document.

Each property shares one app (one set of containers and queues) across its examples, so the
examples also see what earlier ones left behind; Azurite and the simulator are the session's.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.composition import AppServices
from shared.console.app import main
from shared.documents.jobs import TERMINAL, job_id_for
from shared.settings import AppSettings
from tests.integration.hostile.calls import (
    BATCHES_URL,
    JOBS_URL,
    answer,
    continue_batch,
    deliver,
    get,
    post,
    resume,
    upload_and_deliver,
)
from tests.integration.hostile.invariants import (
    assert_only_own_names_written,
    output_snapshot,
    run_names,
    written,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def examples(count: int) -> settings:
    """A property's settings: `count` examples, no per-example deadline (storage calls vary
    on a shared machine), and one app shared by the examples (a function-scoped fixture)."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


NORMAL = b"Invoice 7: 120 EUR for consulting, due in 30 days."

# --- strategies ------------------------------------------------------------------------------

# Text of every kind a caller may send: control and format characters, lone surrogates, RTL
# marks, path pieces, the app's reserved folders.
nasty_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(exclude_categories=[]), min_size=1, max_size=20),
    st.sampled_from(
        [
            "",
            ".",
            "..",
            "../x",
            "/etc/passwd",
            "open",
            "versions",
            "versions/",
            "refused/",
            "v",
            "a\u0000b",
            "\u202ertl",
            "\ud800",
            "a\udfffb",
            "%2e%2e",
            "a\n",
            "P99999999D",
            "-P1D",
            "9" * 40,
            "1e400",
            "NaN",
            "9999-12-31T23:59:59",
            "0001-01-01T00:00:00+14:00",
            "default",
            "x" * 2000,
        ]
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=12,
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "text/plain",
        "multipart/form-data; boundary=B",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "",
    ]
)


def job_fields() -> st.SearchStrategy[dict[str, Any]]:
    fields = st.fixed_dictionaries(
        {},
        optional={
            "text": st.one_of(nasty_text, json_values),
            "filename": st.one_of(nasty_text, json_values),
            "profile": st.one_of(nasty_text, json_values),
            "questions": st.one_of(st.lists(nasty_text, max_size=60), json_values),
        },
    )
    return st.one_of(fields, st.dictionaries(nasty_text, json_values, max_size=5))


def batch_fields() -> st.SearchStrategy[dict[str, Any]]:
    fields = st.fixed_dictionaries(
        {},
        optional={
            "model": st.one_of(st.just("default"), nasty_text, json_values),
            "input_prefix": st.one_of(st.just("in/"), nasty_text, json_values),
            "output_prefix": st.one_of(st.just("out/"), nasty_text, json_values),
            "deadline": st.one_of(st.just("PT1H"), nasty_text, json_values),
            "run_id": st.one_of(nasty_text, json_values),
        },
    )
    return st.one_of(fields, st.dictionaries(nasty_text, json_values, max_size=5))


def encoded(payload: Any) -> bytes:
    return json.dumps(payload, allow_nan=True).encode("utf-8", errors="surrogatepass")


bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda d: b"[" * d + b"]" * d, st.integers(1, 30_000)),
    st.builds(lambda d: b'{"a":' * d + b"1" + b"}" * d, st.integers(1, 5000)),
    st.builds(lambda s: s.encode("utf-8", errors="surrogatepass"), st.text(max_size=100)),
)


def multipart(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--B\r\nContent-Disposition: {disposition}\r\n\r\n".encode(
            "utf-8", errors="surrogatepass"
        )
        out += data + b"\r\n"
    return out + b"--B--\r\n"


multipart_bodies = st.builds(
    multipart,
    st.lists(
        st.tuples(
            st.sampled_from(["file", "questions", "profile", "other"]),
            st.one_of(st.none(), nasty_text),
            st.one_of(st.binary(max_size=60), st.just(NORMAL), st.just(b'["why?"]')),
        ),
        max_size=4,
    ),
)

# --- what every property checks afterwards ----------------------------------------------------


def serves_a_normal_document(app: AppServices) -> None:
    name = f"contracts/normal-{len(output_snapshot(app))}.txt"
    before = output_snapshot(app)
    upload_and_deliver(app, name, NORMAL)
    record = app.jobs.get(job_id_for(app.settings.input_container, name, NORMAL))
    assert record is not None and record.status == "succeeded", record
    assert_only_own_names_written(before, output_snapshot(app), name)


@pytest.fixture
def quiet_app(app: AppServices) -> Iterator[AppServices]:
    yield app
    serves_a_normal_document(app)


def input_names(app: AppServices) -> set[str]:
    container = app.blob_service.get_container_client(app.settings.input_container)
    return {blob.name for blob in container.list_blobs()}


SUBMITTED = re.compile(r"submitted/\d{4}-\d{2}-\d{2}/[0-9a-f]{12}-[A-Za-z0-9._-]+")


def accepted_or_refused(status: int) -> None:
    assert status in (202, 400, 404, 413), status


# --- HTTP -------------------------------------------------------------------------------------


@examples(60)
@given(
    payload=st.one_of(job_fields().map(encoded), bodies, multipart_bodies),
    content_type=content_types,
)
# What earlier runs found (now refused with 400): kept as fixed examples.
@example(payload=b'{"text": "\\ud800 hello"}', content_type="application/json")
@example(payload=b'{"text": "x", "questions": ["\\udfff"]}', content_type="application/json")
def test_post_jobs_never_500s_and_stores_only_its_own_input(
    quiet_app: AppServices, payload: bytes, content_type: str
) -> None:
    before_inputs, before_outputs = input_names(quiet_app), output_snapshot(quiet_app)
    response = post(JOBS_URL, payload, content_type or None)
    accepted_or_refused(response.status_code)
    body = answer(response)
    new_inputs = input_names(quiet_app) - before_inputs
    if response.status_code == 202:
        assert new_inputs == {body["input"]} and SUBMITTED.fullmatch(body["input"]), body
    else:
        assert body["error"] and new_inputs == set(), body
    assert written(before_outputs, output_snapshot(quiet_app)) == set()


@examples(60)
@given(
    payload=st.one_of(batch_fields().map(encoded), bodies),
    content_type=st.one_of(st.just("application/json"), content_types),
)
def test_post_batches_never_500s_and_creates_only_its_own_run(
    quiet_app: AppServices, payload: bytes, content_type: str
) -> None:
    before_runs, before_outputs = run_names(quiet_app), output_snapshot(quiet_app)
    response = post(BATCHES_URL, payload, content_type or None)
    assert response.status_code in (202, 400, 413), response.get_body()
    body = answer(response)
    new_runs = run_names(quiet_app) - before_runs
    if response.status_code == 202:
        run_id = body["run_id"]
        assert new_runs <= {f"{run_id}/state.json", f"open/{run_id}"}, new_runs
    else:
        assert body["error"] and new_runs == set(), body
    assert written(before_outputs, output_snapshot(quiet_app)) == set()


@examples(60)
@given(route=nasty_text, which=st.sampled_from([JOBS_URL, BATCHES_URL]))
def test_get_routes_answer_200_400_or_404_and_write_nothing(
    quiet_app: AppServices, route: str, which: str
) -> None:
    before = output_snapshot(quiet_app), run_names(quiet_app), input_names(quiet_app)
    response = get(which, route)
    assert response.status_code in (200, 400, 404), response.get_body()
    answer(response)
    assert (output_snapshot(quiet_app), run_names(quiet_app), input_names(quiet_app)) == before


# --- queue messages -----------------------------------------------------------------------------


def messages(key: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        bodies,
        st.fixed_dictionaries(
            {key: st.one_of(nasty_text, json_values)},
            optional={"reason": st.one_of(nasty_text, json_values)},
        ).map(encoded),
        st.builds(lambda v: encoded({key: v}), st.from_regex(r"[0-9a-f]{24}", fullmatch=True)),
        st.builds(
            lambda v: encoded({key: v}),
            st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True),
        ),
    )


@examples(60)
@given(
    body=st.one_of(messages("job_id"), messages("run_id")),
    queue=st.sampled_from(["resume", "batch"]),
    dequeue_count=st.integers(1, 6),
)
def test_queue_messages_never_raise_and_write_no_outcome(
    quiet_app: AppServices, body: bytes, queue: str, dequeue_count: int
) -> None:
    before = output_snapshot(quiet_app), run_names(quiet_app)
    (resume if queue == "resume" else continue_batch)(body, dequeue_count)
    assert (output_snapshot(quiet_app), run_names(quiet_app)) == before


# --- blob names ----------------------------------------------------------------------------------

blob_names = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=60),
    st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from(["versions/", "refused/", "versions/submitted/2026-01-01/", "contracts/"]),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40),
    ),
    st.builds(lambda n: "d/" + "x" * n + ".txt", st.integers(950, 1010)),
)


@examples(25)
@given(
    name=blob_names,
    data=st.one_of(st.just(NORMAL), st.just(b""), st.binary(max_size=40), st.just(b"\xff\xfe")),
)
def test_any_uploaded_name_gets_outcomes_only_under_its_own_names(
    quiet_app: AppServices, name: str, data: bytes
) -> None:
    # Storage resolves '.' and '..' segments of a URL: such a name is stored as another one.
    assume(not any(segment in (".", "..") for segment in name.split("/")))
    container = quiet_app.blob_service.get_container_client(quiet_app.settings.input_container)
    try:
        container.upload_blob(name, data, overwrite=True)
        assume(container.get_blob_client(name).exists())
    except (HttpResponseError, ValueError):
        assume(False)  # storage refuses the name: nobody can upload it
    before = output_snapshot(quiet_app)
    deliver(quiet_app, name, data)
    record = quiet_app.jobs.get(job_id_for(quiet_app.settings.input_container, name, data))
    assert record is not None and record.status in TERMINAL, record
    assert_only_own_names_written(before, output_snapshot(quiet_app), name)


# --- the hosted-models file ----------------------------------------------------------------------

EXAMPLE_TOML = (REPO_ROOT / "hosting.example.toml").read_text(encoding="utf-8")
TOML_ASSIGNMENT = re.compile(r"^(\s*[A-Za-z_]+\s*=\s*)(.*)$")
toml_values = st.one_of(
    st.builds(json.dumps, nasty_text),  # a TOML basic string is a JSON string, mostly
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(
        ["true", "[]", "{}", "1e309", "nan", "-inf", "1979-05-27", '"P99999999D"', '"versions/"']
    ),
    st.text(max_size=12),
)


@st.composite
def hosted_models_files(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=200))
    lines = EXAMPLE_TOML.splitlines()
    for index in draw(st.lists(st.integers(0, len(lines) - 1), max_size=4)):
        match = TOML_ASSIGNMENT.match(lines[index])
        if match:
            lines[index] = match.group(1) + draw(toml_values)
    return "\n".join(lines)


@examples(40)
@given(text=hosted_models_files())
def test_any_hosted_models_file_loads_or_is_a_settings_error(
    tmp_path: Path, app_settings: dict[str, str], text: str
) -> None:
    path = tmp_path / "hosting.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    values = {k: v for k, v in app_settings.items() if k != "FINE_TUNED_MODEL"}
    values["HOSTING_CONFIG_FILE"] = str(path)
    with contextlib.suppress(ValidationError):
        AppSettings.model_validate(values)


# --- command arguments -------------------------------------------------------------------------

command_lines = st.one_of(
    st.tuples(st.just("batch"), st.just("status"), nasty_text),
    st.tuples(st.just("job"), nasty_text),
    st.tuples(st.just("jobs"), st.just("--since"), nasty_text),
    st.tuples(
        st.just("batch"),
        st.just("run"),
        st.just("default"),
        st.just("--input-prefix"),
        st.sampled_from(["empty/", "a\u0000/", "versions/", "../x", "\u202e/"]),
        st.just("--run-id"),
        nasty_text,
    ),
    st.tuples(
        st.just("batch"),
        st.just("run"),
        st.just("default"),
        st.just("--input-prefix"),
        st.just("nothing-here/"),
        st.just("--deadline"),
        nasty_text,
    ),
)


@examples(15)
@given(argv=command_lines)
def test_command_arguments_end_in_an_exit_code_never_a_traceback(
    quiet_app: AppServices, hosting_file: Path, argv: tuple[str, ...]
) -> None:
    assume(all("\x00" not in arg for arg in argv))  # no process can be given a NUL
    before = output_snapshot(quiet_app)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--settings", str(hosting_file), *argv])
    assert code in (0, 1, 2, 4), (argv, code, stderr.getvalue())
    assert "Traceback" not in stderr.getvalue()
    if code == 1:
        assert "no batch run" in stderr.getvalue() or "no job" in stderr.getvalue(), stderr
    assert written(before, output_snapshot(quiet_app)) == set()


@pytest.fixture
def hosting_file(hosting: Any) -> Path:
    path: Path = hosting.settings
    return path
