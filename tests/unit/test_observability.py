"""Structured log fields: set around the work, on every record, in renewal threads too."""

from __future__ import annotations

import logging
import threading

import pytest

from shared.observability import current_log_fields, install_log_fields, log_fields
from shared.renewal import PeriodicRenewal


def test_fields_nest_and_are_restored(caplog: pytest.LogCaptureFixture) -> None:
    install_log_fields()
    log = logging.getLogger("shared.test")
    with caplog.at_level(logging.INFO, logger="shared.test"):
        with log_fields(job_id="j1"):
            log.info("outer")
            with log_fields(model="contracts", deployment="ft-c", hold_id=None):
                log.info("inner")
            log.info("outer again")
        log.info("outside")
    by_message = {r.getMessage(): r for r in caplog.records}
    assert by_message["outer"].job_id == "j1"  # type: ignore[attr-defined]
    assert not hasattr(by_message["outer"], "model")
    inner = by_message["inner"]
    assert (inner.job_id, inner.model, inner.deployment) == ("j1", "contracts", "ft-c")  # type: ignore[attr-defined]
    assert not hasattr(inner, "hold_id"), "None leaves a field unset"
    assert not hasattr(by_message["outer again"], "model")
    assert not hasattr(by_message["outside"], "job_id")
    assert current_log_fields() == {}


def test_renewal_threads_log_under_the_fields_of_the_work_they_protect() -> None:
    seen: list[dict[str, str]] = []
    renewed = threading.Event()

    def renew() -> None:
        seen.append(current_log_fields())
        renewed.set()

    with log_fields(job_id="j2", hold_id="job:j2"), PeriodicRenewal("t", 0.03, renew):
        assert renewed.wait(5)
    assert seen[0] == {"job_id": "j2", "hold_id": "job:j2"}
