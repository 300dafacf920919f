"""Each dataset rule on a file that breaks only it: the exact message, line and severity.

The files are in `datasets/broken/` (written by `make_datasets.py`); every clean line around
the broken one passes, so each file's errors are exactly the rule's. Token counts use the
network-free estimate, so the over-limit count is the same on every machine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.documents.tokens import EstimatingTokenCounter
from shared.finetuning.dataset import DEFAULT_MAX_LINE_BYTES, TokenHistogram, check_dataset
from shared.finetuning.examples import Code, Severity
from shared.finetuning.limits import DEFAULT_EPOCH_RULE, UnknownBaseModel, base_model_limits
from shared.finetuning.report import DatasetReport
from tests.unit.finetuning.make_datasets import BROKEN_LINE, broken_files

DATASETS = Path(__file__).parent / "datasets"
BROKEN = DATASETS / "broken"
E, W = Severity.ERROR, Severity.WARNING

# file, base model, severity, code, line, exact message
RULES: list[tuple[str, str, Severity, Code, int | None, str]] = [
    ("not_json.jsonl", "gpt-4o-mini", E, Code.NOT_JSON, 5,
     "not JSON: Expecting ',' delimiter at column 48; each line must be one JSON object"),
    ("not_utf8.jsonl", "gpt-4o-mini", E, Code.NOT_UTF8, 5,
     "not UTF-8: byte 0xe9 at byte offset 838 of the file (invalid continuation byte); save "
     "the file as UTF-8"),
    ("not_object.jsonl", "gpt-4o-mini", E, Code.NOT_OBJECT, 5,
     'a JSON list, not an object; each line must be one example such as {"messages": [...]}'),
    ("no_messages.jsonl", "gpt-4o-mini", E, Code.NO_MESSAGES, 5,
     '"messages" must be a non-empty list of {"role": ..., "content": ...} objects'),
    ("unknown_key_example.jsonl", "gpt-4o-mini", E, Code.UNKNOWN_KEY, 5,
     'unknown key "labels" in the example; a chat example may have: messages, tools, '
     "functions, parallel_tool_calls"),
    ("unknown_key_message.jsonl", "gpt-4o-mini", E, Code.UNKNOWN_KEY, 5,
     'message 2 has unknown key "audio"; a message may have: role, content, weight, name, '
     "tool_calls, function_call, tool_call_id"),
    ("unknown_role.jsonl", "gpt-4o-mini", E, Code.UNKNOWN_ROLE, 5,
     'message 2 has unknown role "customer"; the roles are: system, user, assistant, tool, '
     "function"),
    ("empty_content.jsonl", "gpt-4o-mini", E, Code.EMPTY_CONTENT, 5,
     "message 3 (assistant) has empty content; give it text or remove the message"),
    ("no_assistant.jsonl", "gpt-4o-mini", E, Code.NO_ASSISTANT, 5,
     "no assistant message; an example needs at least one for the model to learn from"),
    ("bad_weight.jsonl", "gpt-4o-mini", E, Code.BAD_WEIGHT, 5,
     "message 3 has weight 0.5; weight must be 0 (do not learn from this message) or 1"),
    ("weight_not_on_assistant.jsonl", "gpt-4o-mini", E, Code.WEIGHT_NOT_ON_ASSISTANT, 5,
     "message 2 (user) has a weight; only assistant messages may have one"),
    ("mixed_formats.jsonl", "gpt-4o-mini", E, Code.MIXED_FORMATS, 5,
     "a prompt/completion example in a file of chat examples (the first example, line 1, is "
     "chat); one file holds one format"),
    ("format_not_for_model.jsonl", "gpt-4o-mini", E, Code.FORMAT_NOT_FOR_MODEL, 1,
     "prompt/completion examples, but gpt-4o-mini trains on chat examples"),
    ("bad_prompt_completion.jsonl", "davinci-002", E, Code.BAD_PROMPT_COMPLETION, 5,
     '"prompt" and "completion" must both be strings'),
    ("too_few_examples.jsonl", "gpt-4o-mini", E, Code.TOO_FEW_EXAMPLES, None,
     "5 valid example(s); Azure needs at least 10 in a training file"),
    ("over_token_limit.jsonl", "gpt-35-turbo-0125", E, Code.OVER_TOKEN_LIMIT, 5,
     "the example has 17,170 tokens, over gpt-35-turbo-0125's limit of 16,385 per example; "
     "shorten or split it"),
    ("line_too_long.jsonl", "gpt-4o-mini", E, Code.LINE_TOO_LONG, 5,
     "the line is 5,156 bytes, longer than 4,096; no example within the token limit is this "
     "long"),
    ("few_examples.jsonl", "gpt-4o-mini", W, Code.FEW_EXAMPLES, None,
     "20 valid examples; at least 50 are advised for a noticeable effect"),
    ("duplicate.jsonl", "gpt-4o-mini", W, Code.DUPLICATE, 8, "the same example as line 3"),
    ("no_system.jsonl", "gpt-4o-mini", W, Code.NO_SYSTEM, 5, "no system message"),
    ("no_user.jsonl", "gpt-4o-mini", W, Code.NO_USER, 5, "no user message"),
]  # fmt: skip
# Findings a file has besides its rule's, because of the rule (a file of 12 lines has fewer
# than 50 examples; a user message with an unknown role leaves no user message).
ALSO_EXPECTED: dict[str, set[Code]] = {"unknown_role.jsonl": {Code.NO_USER}}


def _check(name: str, base: str, *, validation: Path | None = None) -> DatasetReport:
    return check_dataset(
        BROKEN / name,
        validation,
        base_model=base,
        counter=EstimatingTokenCounter(),
        # A small limit so the file stays small; the default is 16 MiB.
        max_line_bytes=4096 if name == "line_too_long.jsonl" else DEFAULT_MAX_LINE_BYTES,
    )


def test_every_broken_file_is_in_the_table() -> None:
    on_disk = {path.name for path in BROKEN.glob("*.jsonl")}
    assert on_disk == set(broken_files())
    assert {row[0] for row in RULES} | {"shared_valid.jsonl"} == on_disk


def test_the_files_on_disk_are_what_the_generator_writes() -> None:
    for name, content in broken_files().items():
        assert (BROKEN / name).read_bytes() == content, f"run make_datasets for {name}"


@pytest.mark.parametrize("rule", RULES, ids=[row[0] for row in RULES])
def test_a_broken_file_gives_its_rule_exactly(
    rule: tuple[str, str, Severity, Code, int | None, str],
) -> None:
    name, base, severity, code, line, message = rule
    report = _check(name, base)
    path = str(BROKEN / name)
    placed = [(f.severity, f.code, f.message, f.file, f.line) for f in report.findings.kept]
    assert (severity, code, message, path, line) in placed
    found = {finding.code for finding in report.findings.kept}
    allowed = {code, Code.FEW_EXAMPLES} | ALSO_EXPECTED.get(name, set())
    assert found <= allowed, report.summary_lines()
    assert report.ok is (severity is W)
    # The human summary has the same finding in compiler form.
    where = path if line is None else f"{path}:{line}"
    assert f"{where}: {severity.value} {code.value}: {message}" in report.summary_lines()


def test_not_utf8_reports_the_byte_offset_of_the_bad_byte() -> None:
    report = _check("not_utf8.jsonl", "gpt-4o-mini")
    (finding,) = [f for f in report.findings.kept if f.code is Code.NOT_UTF8]
    raw = (BROKEN / "not_utf8.jsonl").read_bytes()
    assert finding.byte_offset is not None
    assert raw[finding.byte_offset] == 0xE9
    assert raw[: finding.byte_offset].count(b"\n") == BROKEN_LINE - 1


def test_a_validation_example_seen_in_training_is_a_warning_naming_both_lines() -> None:
    report = check_dataset(
        DATASETS / "clean.jsonl",
        BROKEN / "shared_valid.jsonl",
        base_model="gpt-4o-mini",
        counter=EstimatingTokenCounter(),
    )
    shared = [f for f in report.findings.kept if f.code is Code.SHARED_WITH_TRAINING]
    assert [(f.file, f.line, f.severity) for f in shared] == [
        (str(BROKEN / "shared_valid.jsonl"), 2, W)
    ]
    assert shared[0].message.startswith(
        f"the same example as line 7 of the training file {DATASETS / 'clean.jsonl'}"
    )
    assert report.ok


def test_a_file_over_the_upload_limit_is_an_error_before_any_line(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_bytes((DATASETS / "clean.jsonl").read_bytes())
    with big.open("r+b") as handle:
        handle.truncate(512 * 1024 * 1024 + 1)  # sparse: no disk is used for the zeros
    report = check_dataset(big, base_model="gpt-4o-mini", counter=EstimatingTokenCounter())
    first = report.findings.kept[0]
    assert (first.severity, first.code, first.line) == (E, Code.FILE_TOO_LARGE, None)
    assert first.message == (
        "the file is 536,870,913 bytes, over Azure's upload limit of 536,870,912 bytes "
        "(512 MB); split it or remove examples"
    )


def test_the_clean_dataset_passes_with_its_statistics_and_estimate() -> None:
    report = check_dataset(
        DATASETS / "clean.jsonl",
        DATASETS / "valid.jsonl",
        base_model="gpt-4o-mini-2024-07-18",
        counter=EstimatingTokenCounter(),
    )
    assert report.ok
    assert report.findings.kept == []
    training, validation = report.files
    assert (training.examples, training.valid_examples, training.data_format) == (60, 60, "chat")
    assert validation.examples == 15
    assert training.tokens is not None
    assert training.tokens.minimum <= training.tokens.median <= training.tokens.maximum
    estimate = report.estimate
    assert estimate is not None
    # 60 examples x 3 epochs is between 100 and 25,000 examples seen: the rule keeps 3.
    assert (estimate.epochs, estimate.epochs_source) == (3, "default rule")
    assert estimate.tokens_per_epoch == training.tokens.total
    assert estimate.billed_tokens == 3 * training.tokens.total
    assert estimate.cost_usd == pytest.approx(3 * training.tokens.total * 3.00 / 1_000_000)
    as_json = json.loads(json.dumps(report.to_json()))
    assert as_json["ok"] is True
    assert as_json["estimate"]["price_per_million_tokens"]["verified"] is False
    assert as_json["files"][0]["tokens_per_example"]["median"] == training.tokens.median


def test_given_epochs_and_price_win_over_the_table() -> None:
    report = check_dataset(
        DATASETS / "clean.jsonl",
        base_model="gpt-4.1-mini",
        epochs=4,
        price_per_million=2.0,
        counter=EstimatingTokenCounter(),
    )
    estimate = report.estimate
    assert estimate is not None
    assert (estimate.epochs, estimate.epochs_source) == (4, "given")
    assert estimate.billed_tokens == 4 * estimate.tokens_per_epoch
    assert estimate.cost_usd == pytest.approx(estimate.billed_tokens * 2.0 / 1_000_000)


def test_findings_are_capped_per_code_but_counted_in_full(tmp_path: Path) -> None:
    lines = [b"not json\n"] * 30
    path = tmp_path / "junk.jsonl"
    path.write_bytes(b"".join(lines))
    report = check_dataset(
        path, base_model="gpt-4o-mini", counter=EstimatingTokenCounter(), max_per_code=3
    )
    assert [f.line for f in report.findings.kept if f.code is Code.NOT_JSON] == [1, 2, 3]
    assert report.to_json()["counts"]["error"]["not_json"] == 30
    assert report.findings.left_out() == {"not_json": 27}


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-mini-2025-04-14.ft-0123abcd", "gpt-4.1-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("GPT-35-TURBO-0125", "gpt-35-turbo-0125"),
    ],
)
def test_model_names_find_their_row(name: str, row: str) -> None:
    assert base_model_limits(name).name == row


def test_an_unknown_model_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownBaseModel, match=re.escape("gpt-4o-mini, gpt-4.1,")):
        base_model_limits("gpt-4o-minimal")


@pytest.mark.parametrize(
    ("examples", "epochs"),
    [(1, 25), (10, 10), (20, 5), (34, 3), (60, 3), (8_333, 3), (10_000, 2), (30_000, 1)],
)
def test_the_default_epoch_rule(examples: int, epochs: int) -> None:
    assert DEFAULT_EPOCH_RULE.epochs_for(examples) == epochs


@pytest.mark.parametrize(
    ("values", "median"),
    [([7], 7.0), ([3, 9], 6.0), ([5, 1, 4, 4], 4.0), ([1, 2, 50, 60, 70], 50.0)],
)
def test_the_token_histogram_gives_the_exact_median(values: list[int], median: float) -> None:
    histogram = TokenHistogram(limit=64)
    for value in values:
        histogram.add(value)
    stats = histogram.stats()
    assert (stats.minimum, stats.median, stats.maximum, stats.total) == (
        min(values),
        median,
        max(values),
        sum(values),
    )


def test_duplicates_are_listed_first_by_line_and_counted_in_full(tmp_path: Path) -> None:
    clean = (DATASETS / "clean.jsonl").read_bytes().removeprefix(b"\xef\xbb\xbf").splitlines()
    # Lines 1-40 clean; then each of lines 1-20 again, twice over: 40 duplicates.
    path = tmp_path / "repeats.jsonl"
    path.write_bytes(b"\n".join(clean[:40] + clean[:20] + clean[:20]) + b"\n")
    report = check_dataset(
        path, base_model="gpt-4o-mini", counter=EstimatingTokenCounter(), max_per_code=5
    )
    kept = [(f.line, f.message) for f in report.findings.kept if f.code is Code.DUPLICATE]
    assert kept == [(41 + n, f"the same example as line {1 + n}") for n in range(5)]
    assert report.to_json()["counts"]["warning"]["duplicate"] == 40
    assert report.findings.left_out() == {"duplicate": 35}
