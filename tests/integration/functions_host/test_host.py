"""The host's composition: a trigger kind plugs in with one `TRIGGER_KINDS` entry.

A stand-in Service Bus kind (no broker behind it) is registered for `serviceBusTrigger`, a
binding type the host does not run itself; the host must
index its functions to it, hand it its options, start, stop and close it, list its functions,
and let the admin API run its functions on demand, with no other change to the host.
"""

from __future__ import annotations

import dataclasses

import aiohttp
import azure.functions as func
import pytest

from scripts.functions_host import host as host_module
from scripts.functions_host.host import LocalFunctionsHost
from scripts.functions_host.http import HttpOptions
from scripts.functions_host.indexing import IndexedFunction
from scripts.functions_host.invocation import HOST_REASON
from scripts.functions_host.triggers import HostContext, TriggerKind
from tests.integration.functions_host.support import run, wait_until


@dataclasses.dataclass(frozen=True)
class ServiceBusOptions:
    poll_seconds: float = 1.0


class StandInServiceBusTriggers(TriggerKind):
    on_demand_label = "service bus"

    def __init__(self, context: HostContext) -> None:
        super().__init__(context)
        self.options = context.options_for(ServiceBusOptions)
        self.functions: list[IndexedFunction] = []
        self.events: list[str] = []

    def add(self, function: IndexedFunction) -> None:
        self.functions.append(function)

    def describe(self) -> list[str]:
        return [f"{f.name}: serviceBusTrigger ({f.trigger['queueName']})" for f in self.functions]

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")

    async def close(self) -> None:
        self.events.append("close")

    def run_now(self, name: str) -> bool:
        function = next((f for f in self.functions if f.name == name), None)
        if function is None:
            return False
        invoker = self.context.invoker
        invoker.track(invoker.invoke(function, "hello", HOST_REASON), f"bus:{name}")
        return True


def test_a_new_trigger_kind_plugs_in_with_one_registry_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        host_module,
        "TRIGGER_KINDS",
        {**host_module.TRIGGER_KINDS, "serviceBusTrigger": StandInServiceBusTriggers},
    )
    received: list[str] = []
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.service_bus_queue_trigger(arg_name="msg", queue_name="work", connection="Bus")
    def on_bus(msg: str) -> None:
        received.append(msg)

    @app.route(route="ping")
    def ping(req: func.HttpRequest) -> str:
        return "pong"

    host = LocalFunctionsHost(
        app, environ={}, options=[HttpOptions(port=0), ServiceBusOptions(poll_seconds=0.5)]
    )
    bus = host.trigger_kind(StandInServiceBusTriggers)
    assert [f.name for f in host.functions] == ["on_bus", "ping"]
    assert [f.name for f in bus.functions] == ["on_bus"]
    assert bus.options == ServiceBusOptions(poll_seconds=0.5)
    assert host.describe() == ["ping: [all methods] /api/ping", "on_bus: serviceBusTrigger (work)"]

    async def scenario() -> None:
        async with host, aiohttp.ClientSession(host.base_url) as http:
            assert bus.events == ["start"]
            async with http.post("/admin/functions/on_bus") as response:
                assert response.status == 202
            await wait_until(lambda: received == ["hello"], 3, "the on-demand Service Bus run")
            async with http.post("/admin/functions/nope") as response:
                assert response.status == 404
                assert await response.json() == {
                    "error": "no timer or service bus function named nope"
                }
        assert bus.events == ["start", "stop", "close"]

    run(scenario())
    assert [(r.function_name, r.succeeded) for r in host.invocations] == [("on_bus", True)]
    # The handler's own time is recorded too, within the invocation's (which adds the wait
    # for a thread).
    assert all(r.handler_ms is not None and r.handler_ms <= r.duration_ms for r in host.invocations)


def test_options_of_one_type_are_given_at_most_once() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    with pytest.raises(TypeError, match="more than one HttpOptions"):
        LocalFunctionsHost(app, environ={}, options=[HttpOptions(port=0), HttpOptions(port=1)])
