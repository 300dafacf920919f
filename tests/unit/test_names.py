"""The naming rules for caller-chosen names (shared/names.py), as properties over any text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.documents.outcomes import current_name, version_name
from shared.names import (
    MAX_BLOB_NAME,
    RESERVED_OUTPUT_PREFIXES,
    output_prefix_problem,
    prefix_problem,
    refusal_record_name,
    refused_output_name,
    unsafe_characters,
)

any_text = st.text(alphabet=st.characters(exclude_categories=[]), max_size=1100)
names = st.one_of(
    any_text,
    st.builds(lambda p, r: p + r, st.sampled_from(RESERVED_OUTPUT_PREFIXES), any_text),
)


@settings(max_examples=300, deadline=None)
@given(name=names)
def test_an_accepted_names_outcomes_stay_out_of_the_reserved_folders_and_fit(name: str) -> None:
    if refused_output_name(name) is not None:
        return
    assert not current_name(name, "result").startswith(RESERVED_OUTPUT_PREFIXES)
    own = [current_name(name, "result"), version_name(name, "0" * 24, "result")]
    assert all(len(outcome) <= MAX_BLOB_NAME for outcome in own)
    assert not unsafe_characters(name)


@settings(max_examples=300, deadline=None)
@given(name=names)
def test_a_refusal_record_is_a_visible_name_under_refused_that_fits(name: str) -> None:
    record = refusal_record_name(name)
    assert record.startswith("refused/") and record.endswith(".error.json")
    assert len(record) <= MAX_BLOB_NAME
    assert not unsafe_characters(record)


@settings(max_examples=300, deadline=None)
@given(prefix=any_text, rest=any_text)
def test_an_accepted_output_prefix_joined_with_any_name_is_never_reserved(
    prefix: str, rest: str
) -> None:
    if not prefix or output_prefix_problem(prefix) is not None:
        return
    assert not (prefix + rest).startswith(RESERVED_OUTPUT_PREFIXES)


def test_what_is_refused_is_said() -> None:
    assert "U+202E" in (prefix_problem("input_prefix", "\u202eabc/") or "")
    assert "'..'" in (prefix_problem("input_prefix", "a/../b") or "")
    assert "reserved" in (output_prefix_problem("versions") or "")
    assert output_prefix_problem("results/") is None
    assert "versions/" in (refused_output_name("versions/a.txt/0123.result") or "")
    assert refused_output_name("contracts/msa.txt") is None
