"""Unit tests of the simulator's state rules with a hand-moved clock: no server, no sleeping."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from simulator import chat
from simulator.billing import billed_lifetimes, billing_report
from simulator.clock import ManualClock, ScaledClock
from simulator.config import ConfigError, SimulatorConfig, parse_config
from simulator.deployments import (
    OperationStatus,
    ProvisioningState,
    parse_deployment_spec,
)
from simulator.errors import ApiError
from simulator.faults import ErrorFault, FaultPlan, Plane
from simulator.jsonbody import encode
from simulator.ratelimit import LimitKind, SlidingWindowRateLimiter, whole_seconds_to_wait
from simulator.state import DEPLOYMENT_NOT_FOUND_MESSAGE, SimulatorState

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def put_body(
    model: str = "gpt-4.1-mini-2025-04-14.ft-0123456789abcdef",
    sku: str = "Standard",
    capacity: int = 1,
    tags: Any = None,
    version: Any = "1",
) -> bytes:
    return json.dumps(
        {
            "sku": {"name": sku, "capacity": capacity},
            "properties": {"model": {"format": "OpenAI", "name": model, "version": version}},
            "tags": {} if tags is None else tags,
        }
    ).encode()


def chat_body(content: str = "Summarise the contract.", **extra: Any) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": content}], **extra}).encode()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=START, time_scale=10.0)


@pytest.fixture
def state(clock: ManualClock) -> SimulatorState:
    config = SimulatorConfig(
        provisioning_seconds=300,
        accepted_seconds=10,
        warmup_seconds=60,
        deletion_seconds=20,
        recreate_cooldown_seconds=20,
        time_scale=10.0,
    )
    return SimulatorState(config, clock)


def error_of(excinfo: pytest.ExceptionInfo[ApiError]) -> tuple[int, str | None, str]:
    error = excinfo.value
    return error.status, error.code, str(error.body["error"]["message"])


# --- provisioning state machine ---------------------------------------------------------------


def test_provisioning_walks_accepted_creating_succeeded_then_serves_after_warmup(
    state: SimulatorState, clock: ManualClock
) -> None:
    result = state.put_deployment("ft", put_body())
    assert result.outcome.created
    deployment = result.outcome.deployment
    seen = {}
    for offset in (0, 9.9, 10, 299.9, 300, 359.9, 360):
        clock.advance(offset - (clock.now() - START))
        seen[offset] = (deployment.state(clock.now()).value, deployment.is_serving(clock.now()))
    assert seen == {
        0: ("Accepted", False),
        9.9: ("Accepted", False),
        10: ("Creating", False),
        299.9: ("Creating", False),
        300: ("Succeeded", False),
        359.9: ("Succeeded", False),
        360: ("Succeeded", True),
    }


def test_create_operation_reports_in_progress_then_succeeded_with_end_time(
    state: SimulatorState, clock: ManualClock
) -> None:
    deployment = state.put_deployment("ft", put_body()).outcome.deployment
    operation_id = deployment.create_operation_id
    first = state.operation(operation_id)
    assert first is not None and first.status is OperationStatus.IN_PROGRESS
    assert first.ended_at is None
    clock.advance(300)
    done = state.operation(operation_id)
    assert done is not None
    assert done.status is OperationStatus.SUCCEEDED
    assert done.ended_at == START + 300
    assert state.operation("no-such-operation") is None


def test_armed_provisioning_failure_ends_failed_and_a_recreate_replaces_it(
    state: SimulatorState, clock: ManualClock
) -> None:
    state.faults.fail_provisionings = 1
    failed = state.put_deployment("ft", put_body()).outcome.deployment
    clock.advance(300)
    assert failed.state(clock.now()) is ProvisioningState.FAILED
    view = state.operation(failed.create_operation_id)
    assert view is not None and view.status is OperationStatus.FAILED
    assert view.error_code == "DeploymentFailed"
    assert state.faults.fail_provisionings == 0

    clock.advance(100)  # a Failed deployment keeps billing until it is replaced or deleted
    again = state.put_deployment("ft", put_body())
    assert again.outcome.created
    clock.advance(300)
    assert again.outcome.deployment.state(clock.now()) is ProvisioningState.SUCCEEDED
    report = state.billing()
    assert [d["hosted_seconds"] for d in report["deployments"]] == [400.0, 300.0]
    assert report["deployments"][0]["deleted_epoch"] == START + 400


def test_put_while_in_flight_is_a_conflict_and_put_on_succeeded_updates_in_place(
    state: SimulatorState, clock: ManualClock
) -> None:
    state.put_deployment("ft", put_body(capacity=1))
    clock.advance(5)
    with pytest.raises(ApiError) as creating:
        state.put_deployment("ft", put_body(capacity=1))
    assert error_of(creating)[:2] == (409, "Conflict")
    assert "in progress" in error_of(creating)[2]

    clock.advance(300)
    original = state.get_deployment("ft")
    etag = original.etag
    updated = state.put_deployment("ft", put_body(capacity=3, tags={"owner": "app"}))
    assert not updated.outcome.created
    assert updated.outcome.deployment is original
    assert original.spec.capacity == 3 and original.spec.tags == {"owner": "app"}
    assert original.etag != etag
    assert original.state(clock.now()) is ProvisioningState.SUCCEEDED

    with pytest.raises(ApiError) as model_change:
        state.put_deployment("ft", put_body(model="other.ft-1"))
    assert error_of(model_change)[:2] == (400, "InvalidResourceProperties")


def test_delete_runs_for_deletion_seconds_then_the_name_cools_down(
    state: SimulatorState, clock: ManualClock
) -> None:
    state.put_deployment("ft", put_body())
    clock.advance(400)
    deleting = state.delete_deployment("ft")
    assert deleting is not None and deleting.delete_operation_id is not None
    assert state.get_deployment("ft").state(clock.now()) is ProvisioningState.DELETING
    assert [d.name for d in state.list_deployments()] == ["ft"]
    with pytest.raises(ApiError) as while_deleting:
        state.put_deployment("ft", put_body())
    assert error_of(while_deleting)[:2] == (409, "Conflict")
    # A second DELETE joins the running deletion.
    assert state.delete_deployment("ft") is deleting

    clock.advance(20)
    with pytest.raises(ApiError) as gone:
        state.get_deployment("ft")
    assert error_of(gone)[:2] == (404, "DeploymentNotFound")
    assert state.list_deployments() == []
    view = state.operation(deleting.delete_operation_id)
    assert view is not None and view.status is OperationStatus.SUCCEEDED
    assert view.ended_at == START + 420
    assert state.delete_deployment("ft") is None

    clock.advance(19.9)
    with pytest.raises(ApiError) as cooling:
        state.put_deployment("ft", put_body())
    assert error_of(cooling)[:2] == (409, "DeploymentRecentlyDeleted")
    assert "wait" in error_of(cooling)[2]
    clock.advance(0.1)
    assert state.put_deployment("ft", put_body()).outcome.created


def test_delete_during_creation_cancels_the_create_operation(
    state: SimulatorState, clock: ManualClock
) -> None:
    created = state.put_deployment("ft", put_body()).outcome.deployment
    clock.advance(50)
    state.delete_deployment("ft")
    clock.advance(300)  # well past the planned ready time: it must not come back
    view = state.operation(created.create_operation_id)
    assert view is not None and view.status is OperationStatus.CANCELED
    assert view.ended_at == START + 50
    assert state.list_deployments() == []
    assert state.billing()["deployments"][0]["hosted_seconds"] == 70.0


def test_fine_tuned_deployments_are_limited_per_account(state: SimulatorState) -> None:
    for index in range(5):
        state.put_deployment(f"ft-{index}", put_body(model=f"base.ft-{index}"))
    with pytest.raises(ApiError) as refused:
        state.put_deployment("ft-5", put_body(model="base.ft-5"))
    status, code, message = error_of(refused)
    assert (status, code) == (400, "InvalidResourceProperties")
    assert "limit of 5 fine-tuned deployments per resource" in message
    # Base models do not count against the fine-tuned limit.
    assert state.put_deployment("base", put_body(model="gpt-4.1-mini")).outcome.created


def test_capacity_beyond_free_quota_is_insufficient_quota(state: SimulatorState) -> None:
    state.put_deployment("a", put_body(model="m.ft-a", capacity=60))
    with pytest.raises(ApiError) as refused:
        state.put_deployment("b", put_body(model="m.ft-b", capacity=41))
    status, code, message = error_of(refused)
    assert (status, code) == (400, "InsufficientQuota")
    assert "require 41 new capacity" in message
    assert "available capacity 40" in message
    assert state.put_deployment("b", put_body(model="m.ft-b", capacity=40)).outcome.created
    # Quota is per SKU: GlobalStandard still has all 100 units.
    assert state.put_deployment(
        "c", put_body(model="m.ft-c", sku="GlobalStandard", capacity=100)
    ).outcome.created


def test_quota_is_counted_per_sku_and_base_model(state: SimulatorState) -> None:
    # Quota is per region, subscription, model and deployment type: another model has its own.
    state.put_deployment("mini", put_body(model="gpt-4.1-mini.ft-a", capacity=100))
    assert state.put_deployment("4o", put_body(model="gpt-4o.ft-b", capacity=100)).outcome.created
    # A fine-tuned model draws on its base model's quota, and the message names that quota.
    with pytest.raises(ApiError) as refused:
        state.put_deployment("base", put_body(model="gpt-4.1-mini", capacity=1))
    status, code, message = error_of(refused)
    assert (status, code) == (400, "InsufficientQuota")
    assert "in quota OpenAI.Standard.gpt-4.1-mini," in message
    assert "current quota usage is 100 and the quota limit is 100" in message


def test_deployment_names_are_case_insensitive_and_keep_their_spelling(
    state: SimulatorState, clock: ManualClock
) -> None:
    state.put_deployment("ft1", put_body(capacity=1))
    clock.advance(300)
    assert state.get_deployment("FT1").name == "ft1"
    updated = state.put_deployment("FT1", put_body(capacity=2))
    assert not updated.outcome.created
    assert [(d.name, d.spec.capacity) for d in state.list_deployments()] == [("ft1", 2)]
    state.delete_deployment("Ft1")
    clock.advance(20)
    with pytest.raises(ApiError) as cooling:
        state.put_deployment("fT1", put_body())
    assert error_of(cooling)[:2] == (409, "DeploymentRecentlyDeleted")


@pytest.mark.parametrize(
    ("raw", "code", "names"),
    [
        (b"{not json", "InvalidRequestContent", "deserialized"),
        (b"[]", "InvalidRequestContent", "JSON object"),
        (json.dumps({"properties": {}}).encode(), "InvalidResourceProperties", "'sku'"),
        (put_body(sku="Premium"), "InvalidResourceProperties", "sku.name"),
        (put_body(capacity=0), "InvalidCapacity", "sku.capacity"),
        (
            json.dumps({"sku": {"name": "Standard", "capacity": 1}}).encode(),
            "InvalidResourceProperties",
            "properties.model",
        ),
        (put_body(tags=[]), "InvalidResourceProperties", "'tags'"),
        (put_body(tags=""), "InvalidResourceProperties", "'tags'"),
        (put_body(tags={"owner": 1}), "InvalidResourceProperties", "'tags'"),
        (put_body(version={"x": 1}), "InvalidResourceProperties", "properties.model.version"),
        (put_body(version=1), "InvalidResourceProperties", "properties.model.version"),
        (b'{"sku": ' + b"[" * 100_000, "InvalidRequestContent", "nested more than 64"),
        (
            put_body().replace(b'"tags": {}', b'"tags": {}, "x": NaN'),
            "InvalidRequestContent",
            "NaN",
        ),
        (
            put_body().replace(b'"capacity": 1', b'"capacity": 1e999'),
            "InvalidRequestContent",
            "1e999",
        ),
    ],
)
def test_put_body_validation_names_the_bad_field(raw: bytes, code: str, names: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_deployment_spec(raw)
    assert refused.value.status == 400
    assert refused.value.code == code
    assert names in str(refused.value.body["error"]["message"])


def test_vanish_removes_at_once_and_ends_billing(state: SimulatorState, clock: ManualClock) -> None:
    state.put_deployment("ft", put_body())
    clock.advance(500)
    state.vanish("ft")
    clock.advance(1000)
    with pytest.raises(ApiError):
        state.get_deployment("ft")
    entry = state.billing()["deployments"][0]
    assert entry["hosted_seconds"] == 500.0
    assert entry["deleted_epoch"] == START + 500
    # Vanishing is not a delete: no cooldown on the name.
    assert state.put_deployment("ft", put_body()).outcome.created


# --- rate limiting -----------------------------------------------------------------------------


def test_request_window_allows_capacity_requests_per_ten_seconds() -> None:
    limiter = SlidingWindowRateLimiter()
    assert limiter.admit(0.0, 10, capacity=2).allowed
    assert limiter.admit(4.0, 10, capacity=2).allowed
    refused = limiter.admit(6.0, 10, capacity=2)
    assert not refused.allowed
    assert refused.limit_kind is LimitKind.REQUESTS
    assert refused.retry_after_seconds == pytest.approx(4.0)  # the request at t=0 leaves at 10
    assert refused.remaining_requests == 0
    # The refused request was not recorded: at t=10 exactly one slot is free again.
    assert limiter.admit(10.0, 10, capacity=2).allowed
    assert not limiter.admit(10.5, 10, capacity=2).allowed


def test_token_window_counts_prompt_plus_max_tokens_over_sixty_seconds() -> None:
    limiter = SlidingWindowRateLimiter()
    first = limiter.admit(0.0, 600, capacity=1)
    assert first.allowed and first.remaining_tokens == 400
    refused = limiter.admit(15.0, 500, capacity=1)
    assert not refused.allowed
    assert refused.limit_kind is LimitKind.TOKENS
    assert refused.retry_after_seconds == pytest.approx(45.0)
    assert limiter.admit(60.0, 500, capacity=1).allowed
    never = limiter.admit(200.0, 1001, capacity=1)
    assert not never.allowed and never.retry_after_seconds == 60.0
    assert limiter.remaining(200.0, capacity=1) == (1, 1000)


def test_retry_after_for_a_429_is_whole_real_seconds_rounded_up() -> None:
    assert whole_seconds_to_wait(0.01) == 1
    assert whole_seconds_to_wait(1.0) == 1
    assert whole_seconds_to_wait(1.2) == 2


# --- data plane rules --------------------------------------------------------------------------


def serving_state(state: SimulatorState, clock: ManualClock, capacity: int = 1) -> None:
    state.put_deployment("ft", put_body(capacity=capacity))
    clock.advance(360)


def test_chat_is_deployment_not_found_until_warm(state: SimulatorState, clock: ManualClock) -> None:
    with pytest.raises(ApiError) as absent:
        state.chat("ft", chat_body(), "2024-10-21")
    assert absent.value.body == {
        "error": {"code": "DeploymentNotFound", "message": DEPLOYMENT_NOT_FOUND_MESSAGE}
    }
    state.put_deployment("ft", put_body())
    clock.advance(330)  # Succeeded, still warming up
    with pytest.raises(ApiError) as warming:
        state.chat("ft", chat_body(), "2024-10-21")
    assert warming.value.status == 404
    clock.advance(30)
    result = state.chat("ft", chat_body(max_tokens=100), "2024-10-21")
    assert result.answer.prompt_tokens == 6 + 4  # ceil(23 / 4) + 4 per message


def test_throttled_chat_says_call_rate_limit_and_gives_real_retry_headers(
    state: SimulatorState, clock: ManualClock
) -> None:
    serving_state(state, clock, capacity=1)
    state.chat("ft", chat_body(max_tokens=10), "2024-10-21")
    clock.advance(2.5)
    with pytest.raises(ApiError) as throttled:
        state.chat("ft", chat_body(max_tokens=10), "2024-10-21")
    error = throttled.value
    assert error.status == 429 and error.code == "429"
    message = str(error.body["error"]["message"])
    assert "API version 2024-10-21 have exceeded call rate limit" in message
    assert "Please retry after 1 seconds" in message
    # 7.5 simulated seconds at time scale 10 = 0.75 real seconds.
    assert error.headers["retry-after-ms"] == "750"
    assert error.headers["Retry-After"] == "1"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"


def test_token_throttling_says_token_rate_limit(state: SimulatorState, clock: ManualClock) -> None:
    serving_state(state, clock, capacity=2)
    state.chat("ft", chat_body(max_tokens=1500), "2024-10-21")
    with pytest.raises(ApiError) as throttled:
        state.chat("ft", chat_body(max_tokens=1500), "2024-10-21")
    assert "exceeded token rate limit" in str(throttled.value.body["error"]["message"])


def test_context_limit_and_content_filter(state: SimulatorState, clock: ManualClock) -> None:
    serving_state(state, clock, capacity=100)
    state.configure({"context_tokens": 50})
    with pytest.raises(ApiError) as too_long:
        state.chat("ft", chat_body("x" * 400), "2024-10-21")
    assert too_long.value.body["error"] == {
        "message": "This model's maximum context length is 50 tokens. However, your messages "
        "resulted in 104 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    with pytest.raises(ApiError) as refused:
        state.chat("ft", chat_body("please SIMULATOR:REFUSE this"), "2024-10-21")
    error = refused.value.body["error"]
    assert error["code"] == "content_filter"
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert error["innererror"]["content_filter_result"]["violence"]["filtered"] is True


def test_prompt_plus_max_tokens_must_fit_the_context(
    state: SimulatorState, clock: ManualClock
) -> None:
    serving_state(state, clock, capacity=100)
    state.configure({"context_tokens": 100})
    prompt = 6 + 4  # ceil(23 / 4) + 4 per message
    assert state.chat("ft", chat_body(max_tokens=100 - prompt), "2024-10-21").answer
    with pytest.raises(ApiError) as too_long:
        state.chat("ft", chat_body(max_completion_tokens=100 - prompt + 1), "2024-10-21")
    assert too_long.value.body["error"] == {
        "message": "This model's maximum context length is 100 tokens. However, you requested "
        "101 tokens (10 in the messages, 91 in the completion). Please reduce the length of the "
        "messages or completion.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }


def test_max_tokens_above_the_model_output_limit_is_a_400_not_a_429(
    state: SimulatorState, clock: ManualClock
) -> None:
    serving_state(state, clock, capacity=1)  # 1,000 tokens a minute: a 429 if it were admitted
    assert state.config.max_output_tokens == 32_768
    with pytest.raises(ApiError) as refused:
        state.chat("ft", chat_body(max_tokens=1_000_000), "2024-10-21")
    assert refused.value.status == 400
    assert refused.value.body["error"] == {
        "message": "max_tokens is too large: 1000000. This model supports at most 32768 "
        "completion tokens, whereas you provided 1000000.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "invalid_value",
    }
    # Refused before the rate limiter: the window is untouched.
    assert state.chat("ft", chat_body(max_tokens=10), "2024-10-21").answer


@pytest.mark.parametrize(
    ("raw", "param", "fragment"),
    [
        (b"{oops", None, "could not parse the JSON body"),
        (b'{"messages":' + b"[" * 200_000, None, "could not parse the JSON body"),
        (chat_body(temperature=float("nan")), None, "could not parse the JSON body"),
        (chat_body().replace(b"}]", b'}], "top_p": Infinity'), None, "could not parse"),
        (chat_body(max_tokens=1e999), None, "could not parse the JSON body"),
        (b"{}", "messages", "'messages' is a required property"),
        (json.dumps({"messages": []}).encode(), "messages", "too short"),
        (json.dumps({"messages": "hi"}).encode(), "messages", "not of type 'array'"),
        (json.dumps({"messages": [{"content": "x"}]}).encode(), "messages", "'role'"),
        (json.dumps({"messages": [{"role": "user"}]}).encode(), "messages", "'content'"),
        (chat_body(max_tokens=0), "max_tokens", "minimum of 1"),
    ],
)
def test_malformed_chat_bodies_get_openai_shaped_400s(
    raw: bytes, param: str | None, fragment: str
) -> None:
    with pytest.raises(ApiError) as refused:
        chat.parse_chat_request(raw, default_max_tokens=100)
    error = refused.value.body["error"]
    assert refused.value.status == 400
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert fragment in error["message"]


def test_answers_are_deterministic_and_echo_the_last_user_message() -> None:
    request = chat.parse_chat_request(chat_body("What is clause 7 about?", max_tokens=20), 1024)
    first, second = chat.answer(request), chat.answer(request)
    assert first == second
    assert first.content.startswith(f"Simulated answer {first.digest}.")
    assert first.content.endswith("What is clause 7 about?")
    assert first.completion_tokens == math.ceil(len(first.content) / 4) <= 20
    assert first.finish_reason == "stop"
    other = chat.answer(chat.parse_chat_request(chat_body("Something else"), 1024))
    assert other.digest != first.digest


def test_an_answer_longer_than_max_tokens_is_cut_and_says_length() -> None:
    whole = chat.answer(chat.parse_chat_request(chat_body("What is clause 7 about?"), 1024))
    cut = chat.answer(
        chat.parse_chat_request(chat_body("What is clause 7 about?", max_tokens=5), 1)
    )
    assert (cut.finish_reason, cut.completion_tokens) == ("length", 5)
    assert cut.content == whole.content[:20]
    schema = {"type": "object", "properties": {"notes": {"type": "string", "minLength": 400}}}
    body = chat_body(
        max_tokens=50,
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    )
    cut_json = chat.answer(chat.parse_chat_request(body, 1024))
    assert (cut_json.finish_reason, cut_json.completion_tokens) == ("length", 50)
    assert cut_json.content.startswith('{"notes": "sim-answer-') and len(cut_json.content) == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut_json.content)  # cut JSON, as Azure returns it


def test_a_self_referencing_schema_is_refused_before_it_grows() -> None:
    # Every level multiplies by 8; unbounded, this 200-byte schema built 300,000 values (and
    # with arrays of 50 items, 151 MB). Each level costs two steps of the depth cap of 12.
    schema = {"type": "object", "properties": {k: {"$ref": "#"} for k in "abcdefgh"}}
    body = chat_body(
        response_format={"type": "json_schema", "json_schema": {"name": "tree", "schema": schema}}
    )
    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        chat.parse_chat_request(body, 1024)
    assert time.monotonic() - started < 1.0
    error = refused.value.body["error"]
    assert refused.value.status == 400
    assert (error["type"], error["param"]) == ("invalid_request_error", "response_format")
    assert error["message"].startswith("Invalid schema for response_format 'tree':")
    # One self-reference is a linked list: bounded by the depth cap, still answered.
    chain = {"type": "object", "properties": {"next": {"$ref": "#"}}}
    linked = chat_body(
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": chain}}
    )
    assert json.loads(chat.answer(chat.parse_chat_request(linked, 1024)).content)["next"]


def test_a_non_finite_schema_bound_is_a_400_not_an_overflow(
    state: SimulatorState, clock: ManualClock
) -> None:
    serving_state(state, clock, capacity=100)
    schema = b'{"type": "object", "properties": {"n": {"type": "integer", "minimum": 1e999}}}'
    body = (
        b'{"messages": [{"role": "user", "content": "x"}], "response_format": {"type": '
        b'"json_schema", "json_schema": {"name": "n", "schema": ' + schema + b"}}}"
    )
    with pytest.raises(ApiError) as refused:
        state.chat("ft", body, "2024-10-21")
    assert refused.value.status == 400
    assert refused.value.body["error"]["type"] == "invalid_request_error"


def test_json_schema_answers_follow_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3},
            "risk": {"type": "string", "enum": ["low", "medium", "high"]},
            "score": {"type": "integer", "minimum": 3, "maximum": 9},
            "ratio": {"type": "number", "exclusiveMinimum": 0},
            "flagged": {"type": "boolean"},
            "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
            "clauses": {"type": "array", "items": {"$ref": "#/$defs/Clause"}},
        },
        "required": ["title", "risk", "score", "ratio", "flagged", "note", "clauses"],
        "additionalProperties": False,
        "$defs": {
            "Clause": {
                "type": "object",
                "properties": {"number": {"type": "integer"}, "kind": {"const": "term"}},
            }
        },
    }
    body = chat_body(
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    )
    document = json.loads(chat.answer(chat.parse_chat_request(body, 64)).content)
    assert document["risk"] == "low"
    assert 3 <= document["score"] <= 9 and isinstance(document["score"], int)
    assert document["ratio"] > 0
    assert document["flagged"] is True
    assert isinstance(document["note"], str)
    assert len(document["title"]) >= 3
    assert document["clauses"] == [{"number": 0, "kind": "term"}]


# --- billing, config, faults, clock -----------------------------------------------------------


def test_billing_rounds_each_lifetime_per_minute_and_per_started_hour(
    state: SimulatorState, clock: ManualClock
) -> None:
    state.put_deployment("short", put_body(model="m.ft-1"))
    state.put_deployment("long", put_body(model="m.ft-2"))
    clock.advance(70)
    state.delete_deployment("short")  # gone at 90 s
    clock.advance(3610)  # long is still up: 3680 s so far
    report = state.billing()
    hosted = {d["name"]: d["hosted_seconds"] for d in report["deployments"]}
    assert hosted == {"short": 90.0, "long": 3680.0}
    assert report["total_hosted_seconds"] == 3770.0
    assert report["per_minute"] == {"billed_minutes": 2 + 62, "cost": round(64 * 1.70 / 60, 6)}
    assert report["per_started_hour"] == {"billed_hours": 1 + 2, "cost": round(3 * 1.70, 6)}
    assert [d["deleted"] is None for d in report["deployments"]] == [False, True]


def test_only_fine_tuned_standard_and_global_standard_deployments_bill_hosting(
    state: SimulatorState, clock: ManualClock
) -> None:
    state.configure({"quota_capacity": 1000})
    state.put_deployment("std", put_body(model="m.ft-1", sku="Standard"))
    state.put_deployment("global", put_body(model="m.ft-2", sku="GlobalStandard"))
    state.put_deployment("dev", put_body(model="m.ft-3", sku="DeveloperTier"))
    state.put_deployment("ptu", put_body(model="m.ft-4", sku="ProvisionedManaged"))
    state.put_deployment("base", put_body(model="gpt-4.1-mini", sku="Standard"))
    clock.advance(90)
    report = state.billing()
    assert [(d["name"], d["billed"], d["billed_minutes"]) for d in report["deployments"]] == [
        ("std", True, 2),
        ("global", True, 2),
        ("dev", False, 0),
        ("ptu", False, 0),
        ("base", False, 0),
    ]
    assert all(d["hosted_seconds"] == 90.0 for d in report["deployments"])
    assert report["total_hosted_seconds"] == 450.0
    assert report["billed_hosted_seconds"] == 180.0
    assert report["per_minute"]["billed_minutes"] == 4
    assert report["per_started_hour"] == {"billed_hours": 2, "cost": round(2 * 1.70, 6)}
    assert [item.billed for item in billed_lifetimes(state.store.history(), clock.now())] == [
        True,
        True,
        False,
        False,
        False,
    ]


def test_billing_of_nothing_is_zero() -> None:
    report = billing_report([], START, 1.7)
    assert report["per_minute"] == {"billed_minutes": 0, "cost": 0.0}
    assert report["per_started_hour"] == {"billed_hours": 0, "cost": 0.0}


def test_runtime_config_changes_are_validated(state: SimulatorState, clock: ManualClock) -> None:
    with pytest.raises(ConfigError, match="unknown setting 'provisioning_secs'"):
        state.configure({"provisioning_secs": 1})
    with pytest.raises(ConfigError, match="'api_key' cannot be changed"):
        state.configure({"api_key": "x"})
    with pytest.raises(ConfigError, match="'time_scale' must be greater than 0"):
        state.configure({"time_scale": 0})
    with pytest.raises(ConfigError, match="whole number"):
        state.configure({"quota_capacity": 1.5})
    view = state.configure({"time_scale": 120, "quota_capacity": 7})
    assert view["time_scale"] == 120.0 and view["quota_capacity"] == 7
    assert clock.time_scale == 120.0


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"time_scale": float("nan")}, "'time_scale' must be a finite number"),
        ({"time_scale": 1e12}, "'time_scale' must be at most 1e\\+06"),
        ({"time_scale": 1e-300}, "'time_scale' must be at least 0.001"),
        ({"quota_capacity": float("inf")}, "'quota_capacity' must be a finite number"),
        ({"quota_capacity": 10**30}, "'quota_capacity' must be at most"),
        ({"hourly_rate": float("nan")}, "'hourly_rate' must be a finite number"),
        ({"provisioning_seconds": 1e300}, "'provisioning_seconds' must be at most"),
        ({"max_output_tokens": 0}, "'max_output_tokens' must be at least 1"),
    ],
)
def test_runtime_settings_must_be_finite_and_bounded(
    state: SimulatorState, changes: dict[str, Any], fragment: str
) -> None:
    before = state.config.public_view()
    with pytest.raises(ConfigError, match=fragment):
        state.configure(changes)
    assert state.config.public_view() == before
    encode(state.billing())  # still valid JSON: no NaN crept in


def test_a_non_finite_start_up_setting_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIM_TIME_SCALE", "nan")
    with pytest.raises(SystemExit) as exited:
        parse_config([])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "'time_scale' must be a finite number" in lines[0]


def test_answers_refuse_to_encode_non_finite_numbers() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        encode({"cost": float("nan")})


def test_error_faults_fire_at_their_rate_at_most_count_times() -> None:
    plan = FaultPlan(seed=0)
    plan.errors[Plane.DATA] = ErrorFault(status=503, rate=1.0, remaining=2)
    assert [plan.draw_error(Plane.DATA) for _ in range(4)] == [503, 503, None, None]
    assert plan.draw_error(Plane.MANAGEMENT) is None

    def draws_with_seed(seed: int) -> list[int | None]:
        seeded = FaultPlan(seed=seed)
        seeded.errors[Plane.MANAGEMENT] = ErrorFault(status=500, rate=0.5)
        return [seeded.draw_error(Plane.MANAGEMENT) for _ in range(400)]

    draws = draws_with_seed(7)
    assert 150 < draws.count(500) < 250
    assert draws_with_seed(7) == draws  # same seed, same sequence
    assert draws_with_seed(8) != draws


def test_scaled_clock_keeps_time_continuous_across_speed_changes() -> None:
    clock = ScaledClock(time_scale=1000.0, epoch=START)
    before = clock.now()
    clock.set_time_scale(1.0)
    after = clock.now()
    assert before <= after < before + 1.0
    with pytest.raises(ValueError, match="positive"):
        clock.set_time_scale(0)


ANSWERS = {
    "type": "object",
    "properties": {
        "answers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
            },
        }
    },
}


@pytest.mark.parametrize(
    "prompt",
    [
        "RFP rfp.txt:\n1. Scope\n2. Terms\n\n1. How many laptops?\n2. When are proposals due?"
        '\n\nReply with JSON only: an object {"answers": [...]}',
        "Contract:\n1. Scope\n\nQuestions:\n1. How many laptops?\n2. When are proposals due?\n",
    ],
)
def test_question_answers_copy_each_question_as_the_app_asks(prompt: str) -> None:
    body = chat_body(
        prompt,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "question_answers", "schema": ANSWERS},
        },
    )
    answer = json.loads(chat.answer(chat.parse_chat_request(body, 1024)).content)
    assert [item["question"] for item in answer["answers"]] == [
        "How many laptops?",
        "When are proposals due?",
    ]
    assert all(
        item["answer"].startswith("Simulated answer sim-answer-") for item in answer["answers"]
    )
