"""Reading traces: any file in the format, and a clear error with the line for a bad row."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.planning.trace import TraceError, load_trace, parse_trace

HEADER = "timestamp,prompt_tokens,completion_tokens,kind\n"


def test_rows_are_read_in_time_order_whatever_the_offset() -> None:
    trace = parse_trace(
        [
            HEADER,
            "2026-03-23T10:00:00+01:00,100,20,adhoc\n",  # 09:00 UTC
            "2026-03-23T08:30:00+00:00,50,5,batch\n",
        ]
    )
    assert [d.kind for d in trace.documents] == ["batch", "adhoc"]
    assert trace.documents[1].tokens == 120
    assert trace.span_seconds == 1800.0


def test_ties_keep_the_files_order_and_the_columns_give_back_what_was_read() -> None:
    import pickle

    from shared.planning.trace import Trace, TraceDocument, TraceDocuments

    given = [
        TraceDocument(30.0, 1, 2, "adhoc"),
        TraceDocument(10.0, 3, 4, "batch"),
        TraceDocument(30.0, 5, 6, "batch"),
        TraceDocument(10.0, 7, 8, "adhoc"),
    ]
    trace = Trace("given", given)
    assert isinstance(trace.documents, TraceDocuments)
    assert list(trace.documents) == [given[1], given[3], given[0], given[2]]
    assert trace.documents[-1] == given[2] and trace.documents[1:3] == (given[3], given[0])
    # Sent to replay processes as it is: pickled and read back the same.
    assert pickle.loads(pickle.dumps(trace.documents)) == trace.documents
    assert TraceDocuments(given[:1]) != trace.documents


def test_columns_may_come_in_any_order_and_blank_lines_are_skipped() -> None:
    trace = parse_trace(
        ["kind,completion_tokens,prompt_tokens,timestamp\n", "\n", "adhoc,1,2,2026-03-23T00:00Z\n"]
    )
    assert trace.documents[0].prompt_tokens == 2


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("2026-03-23 09:00,100,20,adhoc", "has no UTC offset"),
        ("yesterday,100,20,adhoc", "is not ISO 8601"),
        ("2026-03-23T09:00:00+00:00,many,20,adhoc", "prompt_tokens 'many' is not a whole number"),
        ("2026-03-23T09:00:00+00:00,100,-1,adhoc", "cannot be negative"),
        ("2026-03-23T09:00:00+00:00,100,20,urgent", "kind 'urgent' is not one of adhoc, batch"),
        ("2026-03-23T09:00:00+00:00,100", "2 column(s), expected 4"),
        ("2026-03-23T09:00:00+00:00,100,4294967296,adhoc", "more than any model's context"),
    ],
)
def test_a_bad_row_is_refused_with_its_line_number(row: str, says: str) -> None:
    lines = [HEADER, "2026-03-23T08:00:00+00:00,1,1,adhoc\n", row + "\n"]
    with pytest.raises(TraceError) as refused:
        parse_trace(lines, source="t.csv")
    assert "t.csv, line 3" in str(refused.value)
    assert says in str(refused.value)


def test_a_missing_column_an_empty_file_and_no_rows_are_each_explained(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="line 1: the header lacks kind"):
        parse_trace(["timestamp,prompt_tokens,completion_tokens\n"])
    with pytest.raises(TraceError, match="the file is empty"):
        parse_trace([])
    with pytest.raises(TraceError, match="no documents"):
        parse_trace([HEADER])
    with pytest.raises(TraceError, match="no such trace file"):
        load_trace(tmp_path / "missing.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(TraceError, match="not a UTF-8 text file"):
        load_trace(binary)


def test_fitted_windows_come_out_as_toml_the_hosted_models_file_accepts() -> None:
    import tomllib

    from shared.catalog import ModelDefaults, catalog_from_data
    from shared.planning.fitting import fit_windows, windows_toml

    # Six documents an hour, 09:00-12:00 New York, Monday to Friday.
    rows = [
        f"2026-03-{23 + day}T{hour:02d}:{minute:02d}:00-04:00,800,100,adhoc\n"
        for day in range(5)
        for hour in (9, 10, 11)
        for minute in range(0, 60, 10)
    ]
    trace = parse_trace([HEADER, *rows])
    windows = fit_windows(
        trace.documents, weeks=1, tokens_per_second=10000 / 60, time_zone="America/New_York"
    )
    assert [(w.weekdays, f"{w.opens:%H:%M}", f"{w.closes:%H:%M}") for w in windows] == [
        (("mon", "tue", "wed", "thu", "fri"), "09:00", "12:00")
    ]
    pasted = tomllib.loads(
        '[models.m]\ndeployment = "ft-m"\nfine_tuned_model = "b.ft-1"\n\n'
        + windows_toml(windows, "m")
    )
    catalog = catalog_from_data(
        pasted,
        ModelDefaults(idle_grace_seconds=300, max_lifetime_seconds=50400, context_tokens=8192),
        source="pasted",
        profiles_json=None,
    )
    assert catalog.models["m"].windows == windows


def test_waits_are_tallied_with_nearest_rank_percentiles() -> None:
    from shared.planning.waits import Waits

    waits = Waits([360.0, 0.0, 0.04, 12.5] + [0.0] * 16)
    assert len(waits) == 20
    assert waits.percentile(50) == 0.0
    assert waits.percentile(95) == 12.5  # the 19th of 20
    assert waits.percentile(100) == waits.longest == 360.0
    assert Waits().percentile(95) == 0.0 and Waits().longest == 0.0
