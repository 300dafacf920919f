"""Token counting: the estimate, and tiktoken from local files only (never the network)."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load
import tiktoken.registry
import tiktoken_ext.openai_public

from shared.documents import tokens
from shared.documents.tokens import (
    ESTIMATE_METHOD,
    PUBLIC_ENCODINGS,
    EstimatingTokenCounter,
    make_token_counter,
    read_tiktoken_bpe,
    tiktoken_cache_dir,
    tiktoken_cache_file_name,
)

O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


def _no_network(*args: object, **kwargs: object) -> Any:
    raise AssertionError(f"tiktoken tried to fetch or build an encoding: {args!r}")


@pytest.fixture(autouse=True)
def offline_tiktoken(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Fail any test that would make tiktoken download, and isolate its cache directory."""
    monkeypatch.setattr(tiktoken.load, "read_file", _no_network)
    monkeypatch.setattr(tiktoken, "get_encoding", _no_network)
    monkeypatch.setattr(tiktoken.registry, "get_encoding", _no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-tiktoken-cache"))
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    tokens._load_tiktoken_counter.cache_clear()
    yield
    tokens._load_tiktoken_counter.cache_clear()


def synthetic_bpe_file(path: Path) -> bytes:
    """A tiny valid BPE file: the 256 single bytes, then the merges "ab" and "abab"."""
    ranks = {bytes([value]): value for value in range(256)}
    ranks[b"ab"] = 256
    ranks[b"abab"] = 257
    content = b"".join(
        base64.b64encode(token) + b" " + str(rank).encode() + b"\n" for token, rank in ranks.items()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return content


# --- The estimate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a", 1),
        ("abcdefg", 2),  # letters: 7 / 3.5 = 2 exactly
        ("abcdefgh", 3),  # 8 / 3.5 = 2.29, rounded up
        ("x" * 3500, 1000),
        ("7", 1),  # digits: two a token, rounded up
        ("2024", 2),
        ("12345", 3),
        (",", 1),  # punctuation: one each
        ('{"":[]}', 7),
        ("\n\n", 2),  # newlines: one each
        ("\r\n", 1),  # a carriage return rides with its newline
        (" ", 1),  # spaces and tabs: four a token, rounded up
        (" \t  ", 1),
        ("     ", 2),
        ("héllo", 3),  # 4 letters -> 2, plus 1 for "é"
        ("日本語", 3),  # non-ASCII: one each
        ("\x07", 1),  # other control characters: one each
        ("The supplier shall deliver the goods within 30 days of the order date.", 21),
        ("2024-01-15,ACME Corp,1234.56,EUR\n", 19),  # 4 + 8 + 6 + 1
    ],
)
def test_estimate_counts_each_character_class_at_its_rate(text: str, expected: int) -> None:
    assert EstimatingTokenCounter().count(text) == expected


def test_estimate_never_counts_joined_text_higher_than_its_parts() -> None:
    # Planning relies on it: a part plus its prompt frame is never counted above their sum.
    pieces = ["Clause 1.", " 2024-01-15,", "日本", "  \n", "x" * 13, '"a":', "\t"]
    counter = EstimatingTokenCounter()

    for first in pieces:
        for second in pieces:
            assert counter.count(first + second) <= counter.count(first) + counter.count(second)


def test_estimate_counts_messages_with_4_per_message_and_3_for_the_reply() -> None:
    messages = [{"role": "system", "content": "abcdefg"}, {"role": "user", "content": ""}]

    assert EstimatingTokenCounter().count_messages(messages) == 2 + 0 + 2 * 4 + 3


def test_estimate_method_names_the_formula() -> None:
    assert EstimatingTokenCounter().method == "estimate:chars-by-class"
    assert EstimatingTokenCounter().method == ESTIMATE_METHOD


# --- Where tiktoken's cache is --------------------------------------------------------------


def test_cache_dir_prefers_tiktoken_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "/first")
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", "/second")

    assert tiktoken_cache_dir() == Path("/first")


def test_cache_dir_falls_back_to_data_gym_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR")
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", "/second")

    assert tiktoken_cache_dir() == Path("/second")


def test_cache_dir_defaults_to_data_gym_cache_in_the_temp_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    assert tiktoken_cache_dir() == tmp_path / "data-gym-cache"


def test_an_empty_cache_dir_setting_means_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")

    assert tiktoken_cache_dir() is None
    assert make_token_counter("o200k_base").method == ESTIMATE_METHOD


def test_cache_file_name_is_the_one_tiktoken_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # tiktoken's own reader finds our file without fetching (read_file would raise).
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    (tmp_path / tiktoken_cache_file_name(O200K_URL)).write_bytes(b"cached bytes")

    assert tiktoken.load.read_file_cached(O200K_URL) == b"cached bytes"
    assert tiktoken_cache_file_name(O200K_URL) == hashlib.sha1(O200K_URL.encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(PUBLIC_ENCODINGS))
def test_public_encodings_match_the_installed_tiktoken(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    loads: list[tuple[str, str | None]] = []

    def record_load(blob_url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        loads.append((blob_url, expected_hash))
        return {}

    monkeypatch.setattr(tiktoken_ext.openai_public, "load_tiktoken_bpe", record_load)
    constructed = tiktoken_ext.openai_public.ENCODING_CONSTRUCTORS[name]()
    ours = PUBLIC_ENCODINGS[name]

    assert loads == [(ours.blob_url, ours.sha256)]
    assert constructed["pat_str"] == ours.pat_str
    assert constructed["special_tokens"] == dict(ours.special_tokens)
    assert constructed["name"] == ours.name == name


# --- Choosing tiktoken or the estimate ------------------------------------------------------


def test_no_local_file_gives_the_estimate_without_touching_the_network() -> None:
    counter = make_token_counter("o200k_base")

    assert counter.method == ESTIMATE_METHOD
    assert counter.count("abcdefgh") == 3


def test_an_empty_cache_dir_argument_gives_the_estimate(tmp_path: Path) -> None:
    assert make_token_counter("o200k_base", cache_dir=str(tmp_path)).method == ESTIMATE_METHOD


def test_unknown_encoding_gives_the_estimate(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.documents.tokens"):
        counter = make_token_counter("p99k_imaginary")

    assert counter.method == ESTIMATE_METHOD
    assert "unknown token encoding 'p99k_imaginary'" in caplog.text
    assert "cl100k_base, o200k_base" in caplog.text


def test_shipped_tiktoken_file_in_cache_dir_gives_exact_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    synthetic_bpe_file(tmp_path / "o200k_base.tiktoken")

    with caplog.at_level(logging.WARNING, logger="shared.documents.tokens"):
        counter = make_token_counter("o200k_base", cache_dir=str(tmp_path))

    assert counter.method == "tiktoken:o200k_base"
    # o200k's split pattern makes "abab" one piece, merged to one token; " ab" is " " + "ab".
    assert counter.count("abab") == 1
    assert counter.count("abab ab") == 3
    assert counter.count("xyz") == 3
    # Special-token text in a document is ordinary text, one token per byte here.
    assert counter.count("<|endoftext|>") == len("<|endoftext|>")
    assert counter.count_messages([{"role": "user", "content": "abab"}]) == 1 + 4 + 3
    assert "is not the published o200k_base file" in caplog.text


def test_verified_file_in_tiktokens_cache_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "tiktoken-cache"
    content = synthetic_bpe_file(cache / tiktoken_cache_file_name(O200K_URL))
    published = replace(PUBLIC_ENCODINGS["o200k_base"], sha256=hashlib.sha256(content).hexdigest())
    monkeypatch.setitem(PUBLIC_ENCODINGS, "o200k_base", published)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))

    counter = make_token_counter("o200k_base")

    assert counter.method == "tiktoken:o200k_base"
    assert counter.count("abab") == 1


def test_cached_file_with_the_wrong_checksum_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # tiktoken would delete and re-download such a file; we must not call into it at all.
    cache = tmp_path / "tiktoken-cache"
    synthetic_bpe_file(cache / tiktoken_cache_file_name(O200K_URL))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))

    with caplog.at_level(logging.WARNING, logger="shared.documents.tokens"):
        counter = make_token_counter("o200k_base")

    assert counter.method == ESTIMATE_METHOD
    assert "does not match the published o200k_base checksum" in caplog.text
    assert (cache / tiktoken_cache_file_name(O200K_URL)).exists()


def test_truncated_bpe_file_gives_the_estimate(tmp_path: Path) -> None:
    # Missing single-byte tokens would make tiktoken's BPE panic on the first unknown byte.
    (tmp_path / "o200k_base.tiktoken").write_bytes(base64.b64encode(b"a") + b" 0\n")

    assert make_token_counter("o200k_base", cache_dir=str(tmp_path)).method == ESTIMATE_METHOD


def test_unparsable_bpe_file_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "o200k_base.tiktoken"
    path.write_bytes(base64.b64encode(b"a") + b" 0\nnot-a-line\n")

    with pytest.raises(ValueError, match=r"o200k_base\.tiktoken:2: not a `<base64> <rank>` line"):
        read_tiktoken_bpe(path)
    assert make_token_counter("o200k_base", cache_dir=str(tmp_path)).method == ESTIMATE_METHOD
