"""A new app's reaper: one listing learns the deployment is absent, then passes stay quiet."""

from __future__ import annotations

import logging

import pytest

from shared.hosting.holds import KnownState
from tests.integration.conftest import ServicesFactory


def test_a_never_seen_deployment_is_recorded_absent_and_not_listed_again(
    make_services: ServicesFactory, caplog: pytest.LogCaptureFixture
) -> None:
    services = make_services()
    hosted = services.model()
    assert hosted.ledger.read().state is KnownState.UNKNOWN
    caplog.set_level(logging.DEBUG, logger="shared.hosting.reaper")

    assert services.reaper.run("reaper-test") == []
    assert "reaper lists the account: periodic full sweep" in caplog.text
    assert hosted.ledger.read().state is KnownState.ABSENT
    caplog.clear()

    assert services.reaper.run("reaper-test") == []
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["reaper: every hosted deployment is held or absent; account not listed"]
    assert caplog.records[0].levelno == logging.DEBUG, "a pass that did nothing is not news"
