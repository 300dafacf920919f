"""Conformance of the simulated Azure OpenAI data plane, driven through the openai SDK.

Raw HTTP (requests) is used only for what the SDK cannot send: a body that is not JSON and a
request without api-version.
"""

from __future__ import annotations

import json
import math
import ssl
import time
from typing import Any, Literal

import httpx2
import openai
import pytest
import requests
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import (
    Deployment,
    DeploymentModel,
    DeploymentProperties,
    Sku,
)
from pydantic import BaseModel

from simulator.process import RunningSimulator

FT_MODEL = "gpt-4.1-mini-2025-04-14.ft-5f2a9c0d1e3b4a6f"
WARMUP_REAL_SECONDS = 0.1  # 60 simulated seconds at 600x
DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again."
)


def provisioning_state(deployment: Deployment) -> str | None:
    """The provisioning state of an SDK Deployment (typed Optional all the way down)."""
    assert deployment.properties is not None
    state = deployment.properties.provisioning_state
    return None if state is None else str(state)


def deploy(
    client: CognitiveServicesManagementClient,
    sim: RunningSimulator,
    name: str,
    capacity: int = 10,
    *,
    wait_until_serving: bool = True,
) -> None:
    request = Deployment(
        sku=Sku(name="Standard", capacity=capacity),
        properties=DeploymentProperties(
            model=DeploymentModel(format="OpenAI", name=FT_MODEL, version="1")
        ),
    )
    client.deployments.begin_create_or_update(
        sim.resource_group, sim.account, name, request
    ).result()
    if wait_until_serving:
        time.sleep(WARMUP_REAL_SECONDS + 0.05)


def ask(client: openai.AzureOpenAI, name: str, content: str = "Hello", **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model=name, messages=[{"role": "user", "content": content}], **kwargs
    )


def error_message(error: openai.APIStatusError) -> str:
    """The `message` of an OpenAI-shaped error body, as Azure sent it."""
    body = error.body
    assert isinstance(body, dict)
    return str(body["message"])


def chat_url(sim: RunningSimulator, name: str) -> str:
    return f"{sim.base_url}/openai/deployments/{name}/chat/completions"


def test_deployment_not_found_before_creation_while_creating_and_while_warming(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    with pytest.raises(openai.NotFoundError) as absent:
        ask(aoai_client, "ft-warm")
    assert absent.value.code == "DeploymentNotFound"
    assert absent.value.body == {"code": "DeploymentNotFound", "message": DEPLOYMENT_NOT_FOUND}

    # 3 s of wall time: still warming up when asked after Succeeded, however busy the machine.
    sim.admin.configure(warmup_seconds=1800)
    poller = mgmt_client.deployments.begin_create_or_update(
        sim.resource_group,
        sim.account,
        "ft-warm",
        Deployment(
            sku=Sku(name="Standard", capacity=10),
            properties=DeploymentProperties(
                model=DeploymentModel(format="OpenAI", name=FT_MODEL, version="1")
            ),
        ),
    )
    with pytest.raises(openai.NotFoundError) as creating:
        ask(aoai_client, "ft-warm")
    assert creating.value.code == "DeploymentNotFound"
    assert provisioning_state(poller.result()) == "Succeeded"
    with pytest.raises(openai.NotFoundError) as warming:
        ask(aoai_client, "ft-warm")
    assert warming.value.code == "DeploymentNotFound"
    deadline = time.monotonic() + 30
    while True:  # serving once the warm-up is over: a condition, not a sleep
        try:
            answer = ask(aoai_client, "ft-warm", max_tokens=50)
            break
        except openai.NotFoundError:
            assert time.monotonic() < deadline, "never served"
            time.sleep(0.1)
    assert answer.choices[0].message.content
    stats = sim.admin.stats()["data"]
    assert (stats["ok"], stats["throttled"]) == (1, 0)
    assert stats["not_found"] >= 3 and stats["chat"] == stats["not_found"] + 1


def test_a_successful_answer_is_deterministic_with_usage_and_headers(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy(mgmt_client, sim, "ft-ok")
    question = "What does clause 14.2 of the attached lease say about early termination?"
    response = aoai_client.chat.completions.with_raw_response.create(
        model="ft-ok",
        messages=[
            {"role": "system", "content": "You are a contract assistant."},
            {"role": "user", "content": question},
        ],
        max_tokens=200,
    )
    completion = response.parse()
    content = completion.choices[0].message.content
    assert content is not None
    assert "sim-answer-" in content and content.endswith(question[:80])
    assert completion.object == "chat.completion"
    assert completion.model == FT_MODEL
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.role == "assistant"
    usage = completion.usage
    assert usage is not None
    characters = len("You are a contract assistant.") + len(question)
    assert usage.prompt_tokens == math.ceil(characters / 4) + 2 * 4
    assert usage.completion_tokens == math.ceil(len(content) / 4)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    headers = response.headers
    assert headers["x-ratelimit-remaining-requests"] == "9"
    assert int(headers["x-ratelimit-remaining-tokens"]) == 10_000 - usage.prompt_tokens - 200
    assert headers["apim-request-id"] and headers["x-request-id"]
    assert float(headers["x-sim-inference-ms"]) == pytest.approx(5 + usage.completion_tokens)

    again = aoai_client.chat.completions.create(
        model="ft-ok",
        messages=[
            {"role": "system", "content": "You are a contract assistant."},
            {"role": "user", "content": question},
        ],
        max_tokens=200,
    )
    assert again.choices[0].message.content == content
    assert again.usage is not None and again.usage.completion_tokens == usage.completion_tokens
    other = ask(aoai_client, "ft-ok", "A different question", max_tokens=5)
    assert other.choices[0].message.content != content
    assert other.usage is not None and other.usage.completion_tokens == 5


def test_an_answer_is_cut_at_max_tokens_with_finish_reason_length(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy(mgmt_client, sim, "ft-cut")
    whole = ask(aoai_client, "ft-cut", "Tell me about clause 9.", max_tokens=100)
    text = whole.choices[0].message.content or ""
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and whole.usage.completion_tokens == math.ceil(len(text) / 4)
    cut = ask(aoai_client, "ft-cut", "Tell me about clause 9.", max_tokens=4)
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == text[:16]
    assert cut.usage is not None and cut.usage.completion_tokens == 4

    schema = {
        "type": "object",
        "properties": {"summary": {"type": "string", "minLength": 300}},
        "required": ["summary"],
        "additionalProperties": False,
    }
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "summary", "schema": schema, "strict": True},
    }
    fits = ask(aoai_client, "ft-cut", "Summarise.", max_tokens=200, response_format=response_format)
    assert fits.choices[0].finish_reason == "stop"
    assert len(json.loads(fits.choices[0].message.content or "")["summary"]) >= 300
    cut_json = ask(
        aoai_client, "ft-cut", "Summarise.", max_tokens=30, response_format=response_format
    )
    assert cut_json.choices[0].finish_reason == "length"
    cut_text = cut_json.choices[0].message.content or ""
    assert len(cut_text) == 120 and cut_text.startswith('{"summary": "sim-answer-')
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut_text)


def test_bearer_tokens_are_accepted_and_a_wrong_key_is_401(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    deploy(mgmt_client, sim, "ft-auth")
    with httpx2.Client(verify=ssl.create_default_context(cafile=sim.ca_path)) as http_client:
        entra = openai.AzureOpenAI(
            azure_endpoint=sim.base_url,
            azure_ad_token_provider=lambda: "dummy",
            api_version="2024-10-21",
            max_retries=0,
            http_client=http_client,
        )
        assert ask(entra, "ft-auth", max_tokens=20).usage is not None
        wrong = openai.AzureOpenAI(
            azure_endpoint=sim.base_url,
            api_key="not-the-key",
            api_version="2024-10-21",
            max_retries=0,
            http_client=http_client,
        )
        with pytest.raises(openai.AuthenticationError) as denied:
            ask(wrong, "ft-auth", max_tokens=20)
    assert denied.value.status_code == 401
    assert denied.value.code == "401"
    assert "Access denied due to invalid subscription key" in str(denied.value)


def test_over_the_request_window_is_a_rate_limit_error_with_retry_headers(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy(mgmt_client, sim, "ft-rl", capacity=1)
    sim.admin.configure(time_scale=20)  # the 10 s request window is now 0.5 s of wall time
    ask(aoai_client, "ft-rl", max_tokens=100)
    with pytest.raises(openai.RateLimitError) as throttled:
        ask(aoai_client, "ft-rl", max_tokens=100)
    error = throttled.value
    assert error.status_code == 429 and error.code == "429"
    assert "API version 2024-10-21 have exceeded call rate limit" in str(error)
    assert error.response.headers["Retry-After"] == "1"
    retry_ms = int(error.response.headers["retry-after-ms"])
    assert 0 < retry_ms <= 10_000 / 20 + 1
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
    time.sleep(retry_ms / 1000 + 0.02)
    assert ask(aoai_client, "ft-rl", max_tokens=100).usage is not None
    assert sim.admin.stats()["data"]["throttled"] == 1


def test_over_the_token_window_is_a_token_rate_limit_error(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy(mgmt_client, sim, "ft-tpm", capacity=2)
    sim.admin.configure(time_scale=10)  # the 60 s token window is now 6 s of wall time
    ask(aoai_client, "ft-tpm", max_tokens=1500)
    with pytest.raises(openai.RateLimitError) as throttled:
        ask(aoai_client, "ft-tpm", max_tokens=1500)
    assert "exceeded token rate limit" in str(throttled.value)
    assert throttled.value.response.headers["x-ratelimit-remaining-tokens"] == str(
        2000 - 1500 - (math.ceil(len("Hello") / 4) + 4)
    )


class ClauseSummary(BaseModel):
    clause: str
    risk: Literal["low", "medium", "high"]
    page: int
    obligations: list[str]
    amount: float | None


def test_structured_outputs_parse_into_the_requested_schema(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy(mgmt_client, sim, "ft-json")
    parsed = aoai_client.chat.completions.parse(
        model="ft-json",
        messages=[{"role": "user", "content": "Summarise clause 3."}],
        response_format=ClauseSummary,
        max_tokens=300,
    )
    summary = parsed.choices[0].message.parsed
    assert isinstance(summary, ClauseSummary)
    assert summary.risk == "low" and len(summary.obligations) == 1
    plain_json = ask(
        aoai_client, "ft-json", "Give JSON", response_format={"type": "json_object"}, max_tokens=50
    )
    document = json.loads(plain_json.choices[0].message.content or "")
    assert set(document) == {"answer", "digest"} and document["digest"].startswith("sim-answer-")


def test_context_length_and_content_filter_errors(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy(mgmt_client, sim, "ft-bad", capacity=50)
    sim.admin.configure(context_tokens=100)
    with pytest.raises(openai.BadRequestError) as too_long:
        ask(aoai_client, "ft-bad", "word " * 100, max_tokens=10)
    assert too_long.value.code == "context_length_exceeded"
    assert too_long.value.param == "messages"
    assert error_message(too_long.value) == (
        "This model's maximum context length is 100 tokens. However, you requested 139 tokens "
        "(129 in the messages, 10 in the completion). Please reduce the length of the messages "
        "or completion."
    )
    with pytest.raises(openai.BadRequestError) as filtered:
        ask(aoai_client, "ft-bad", "SIMULATOR:REFUSE", max_tokens=10)
    assert filtered.value.code == "content_filter"
    body = filtered.value.body
    assert isinstance(body, dict)
    assert body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert "content_filter_result" in body["innererror"]


def test_prompt_plus_max_tokens_beyond_the_context_or_output_limit_is_a_400(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy(mgmt_client, sim, "ft-limits", capacity=1)  # 1,000 tokens a minute
    sim.admin.configure(context_tokens=100)
    prompt = math.ceil(len("Hello") / 4) + 4
    assert ask(aoai_client, "ft-limits", max_tokens=100 - prompt).usage is not None
    with pytest.raises(openai.BadRequestError) as too_long:
        ask(aoai_client, "ft-limits", max_tokens=100 - prompt + 1)
    assert too_long.value.code == "context_length_exceeded"
    assert f"you requested 101 tokens ({prompt} in the messages, 95 in the" in str(too_long.value)
    sim.admin.configure(context_tokens=128_000)
    # Far above the model's output limit: a 400 naming the parameter, not a 429 forever.
    with pytest.raises(openai.BadRequestError) as absurd:
        ask(aoai_client, "ft-limits", max_tokens=1_000_000)
    assert (absurd.value.code, absurd.value.param) == ("invalid_value", "max_tokens")
    assert error_message(absurd.value) == (
        "max_tokens is too large: 1000000. This model supports at most 32768 completion tokens, "
        "whereas you provided 1000000."
    )
    assert sim.admin.stats()["data"]["throttled"] == 0


def test_a_self_referencing_schema_is_a_400_and_the_simulator_stays_responsive(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy(mgmt_client, sim, "ft-tree")
    # Each level holds 8 copies of the whole schema; unbounded, the answer is 300,000 values.
    schema = {"type": "object", "properties": {key: {"$ref": "#"} for key in "abcdefgh"}}
    started = time.monotonic()
    with pytest.raises(openai.BadRequestError) as refused:
        ask(
            aoai_client,
            "ft-tree",
            response_format={"type": "json_schema", "json_schema": {"name": "t", "schema": schema}},
        )
    assert time.monotonic() - started < 8.0, "refused early, not after expanding the tree"
    assert refused.value.param == "response_format"
    body = refused.value.body
    assert isinstance(body, dict) and body["type"] == "invalid_request_error"
    assert "Invalid schema for response_format 't'" in body["message"]
    assert ask(aoai_client, "ft-tree", max_tokens=20).usage is not None


def test_malformed_requests_get_azure_answers(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    deploy(mgmt_client, sim, "ft-raw")
    headers = {"api-key": sim.api_key, "Content-Type": "application/json"}
    params = {"api-version": "2024-10-21"}

    def post(data: bytes, query: dict[str, str] | None = None) -> requests.Response:
        return requests.post(
            chat_url(sim, "ft-raw"),
            params=params if query is None else query,
            headers=headers,
            data=data,
            verify=str(sim.ca_path),
            timeout=10,
        )

    not_json = post(b'{"messages": [')
    assert not_json.status_code == 400
    assert not_json.json()["error"]["type"] == "invalid_request_error"
    assert not_json.json()["error"]["code"] is None
    assert not_json.headers["apim-request-id"]
    empty = post(json.dumps({"messages": []}).encode())
    assert empty.status_code == 400
    assert empty.json() == {
        "error": {
            "message": "[] is too short - 'messages'",
            "type": "invalid_request_error",
            "param": "messages",
            "code": None,
        }
    }
    no_role = post(json.dumps({"messages": [{"content": "hi"}]}).encode())
    assert no_role.status_code == 400 and no_role.json()["error"]["param"] == "messages"
    no_version = post(json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), {})
    assert no_version.status_code == 404
    assert no_version.json() == {"error": {"code": "404", "message": "Resource not found"}}

    message = b'{"messages": [{"role": "user", "content": "x"}]'
    schema_with_1e999 = (
        b', "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": '
        b'{"type": "object", "properties": {"n": {"type": "integer", "minimum": 1e999}}}}}}'
    )
    for hostile in (
        b'{"messages":' + b"[" * 200_000,  # RecursionError in a naive parser
        message + schema_with_1e999,  # math.ceil(inf) in a naive answer builder
        message + b', "temperature": NaN}',
        message + b', "top_p": -Infinity}',
    ):
        refused = post(hostile)
        assert refused.status_code == 400, hostile[:60]
        error = refused.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] is None
        assert error["message"].startswith("We could not parse the JSON body")
