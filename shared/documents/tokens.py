"""Counting tokens for request planning, without ever touching the network.

This module owns the `TokenCounter` the document planner sizes prompts and chunks with.

tiktoken downloads an encoding's BPE file from the internet on first use, and a function app
may have no outbound network (and must never stall a job on a download). So this module never
calls `tiktoken.get_encoding`: it looks for the encoding file on local disk, verifies it, and
builds the `tiktoken.Encoding` itself. Where no file is found it falls back to an estimate.

Where an encoding file is looked for:

- `<cache_dir>/<encoding>.tiktoken` when `cache_dir` is given: a file the operator ships with
  the app (the published `o200k_base.tiktoken`). Trusted as given; a checksum that differs from
  the published file is only logged.
- tiktoken's own cache: `<dir>/<sha1 of the blob URL>`, where `<dir>` is `cache_dir` when given,
  else `TIKTOKEN_CACHE_DIR`, else `DATA_GYM_CACHE_DIR`, else `<tmp>/data-gym-cache` (the rule in
  `tiktoken/load.py::read_file_cached`). Used only when its sha256 matches the published one,
  as tiktoken itself would (it re-downloads on a mismatch).

The estimate counts characters by class, each class at a rate meant to be no better than
o200k_base and cl100k_base manage on business text, so that it overestimates. The rates follow
from the encodings' split patterns (digits in groups of at most three, punctuation split from
letters); they were not measured against the published vocabularies, which need a download.

    ceil(ascii_letters / 3.5) + ceil(digits / 2) + ascii_punctuation + newlines
    + ceil(spaces_and_tabs / 4) + other_characters (non-ASCII, control)

A flat `ceil(chars / 3.5)` would be safe for English prose (about four characters a token) but
not for the CSV and JSON this app accepts, where digits go in groups of at most three and most
punctuation is a token of its own (a CSV row like `2024-01-15,ACME Corp,1234.56,EUR` is about
1.9 characters a token), nor for CJK text (about one character a token). On prose the two
formulas give about the same count. Overestimating is the safe direction: it only makes chunks
smaller, while underestimating sends requests the model rejects as too long.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import string
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import tiktoken

logger = logging.getLogger(__name__)

# Per-message framing in the chat format (role and delimiters), after OpenAI's cookbook count.
MESSAGE_OVERHEAD_TOKENS = 4
# Every reply is primed with `<|start|>assistant<|message|>`.
REPLY_PRIMING_TOKENS = 3

ESTIMATE_METHOD = "estimate:chars-by-class"


class TokenCounter(Protocol):
    """Counts tokens the way the deployment's model will (exactly, or conservatively)."""

    @property
    def method(self) -> str:
        """How counts are made: `tiktoken:<encoding>` or `estimate:...`."""
        ...

    def count(self, text: str) -> int: ...

    def count_messages(self, messages: Sequence[Mapping[str, str]]) -> int: ...


def _count_chat_messages(counter: TokenCounter, messages: Sequence[Mapping[str, str]]) -> int:
    content_tokens = sum(counter.count(message.get("content", "")) for message in messages)
    return content_tokens + MESSAGE_OVERHEAD_TOKENS * len(messages) + REPLY_PRIMING_TOKENS


_LETTERS = frozenset(string.ascii_letters)
_DIGITS = frozenset(string.digits)
_PUNCTUATION = frozenset(string.punctuation)
_SPACES = frozenset(" \t\f\v")


@dataclass(frozen=True)
class EstimatingTokenCounter:
    """The network-free fallback: the by-class estimate in the module docstring."""

    method: str = ESTIMATE_METHOD

    def count(self, text: str) -> int:
        letters = digits = spaces = single_tokens = 0
        for char, occurrences in Counter(text).items():
            if char in _LETTERS:
                letters += occurrences
            elif char in _DIGITS:
                digits += occurrences
            elif char in _SPACES:
                spaces += occurrences
            elif char != "\r":  # "\r\n" is one token with its "\n"
                # Punctuation, newlines, non-ASCII and control characters: one token each.
                single_tokens += occurrences
        # ceil(letters / 3.5) == ceil(2 * letters / 7), kept in integers.
        return (2 * letters + 6) // 7 + (digits + 1) // 2 + (spaces + 3) // 4 + single_tokens

    def count_messages(self, messages: Sequence[Mapping[str, str]]) -> int:
        return _count_chat_messages(self, messages)


@dataclass(frozen=True)
class TiktokenCounter:
    """Exact counts with a tiktoken encoding that was loaded from local disk."""

    encoding: tiktoken.Encoding = field(repr=False)

    @property
    def method(self) -> str:
        return f"tiktoken:{self.encoding.name}"

    def count(self, text: str) -> int:
        # encode_ordinary: a document that contains "<|endoftext|>" is text, not a special token.
        return len(self.encoding.encode_ordinary(text))

    def count_messages(self, messages: Sequence[Mapping[str, str]]) -> int:
        return _count_chat_messages(self, messages)


@dataclass(frozen=True)
class PublicEncoding:
    """What tiktoken needs to build one published encoding, minus the BPE file itself.

    Copied from `tiktoken_ext/openai_public.py` so that building the encoding never runs its
    constructor (which downloads); a unit test checks these against the installed tiktoken.
    """

    name: str
    blob_url: str
    sha256: str
    pat_str: str
    special_tokens: Mapping[str, int]


_O200K_PAT_STR = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

# The encodings of the models Azure OpenAI fine-tunes: o200k_base for gpt-4o / gpt-4.1 /
# o4-mini families, cl100k_base for gpt-35-turbo and gpt-4.
PUBLIC_ENCODINGS: Mapping[str, PublicEncoding] = {
    "o200k_base": PublicEncoding(
        name="o200k_base",
        blob_url="https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str=_O200K_PAT_STR,
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
    "cl100k_base": PublicEncoding(
        name="cl100k_base",
        blob_url="https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=_CL100K_PAT_STR,
        special_tokens={
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
}


def tiktoken_cache_dir() -> Path | None:
    """The directory tiktoken caches downloads in, or None when its caching is disabled."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        configured = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        configured = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        return Path(tempfile.gettempdir()) / "data-gym-cache"
    # tiktoken treats an empty value as "do not cache", i.e. download every time.
    return Path(configured) if configured else None


def tiktoken_cache_file_name(blob_url: str) -> str:
    """The name tiktoken stores a downloaded file under: the sha1 of its URL."""
    return hashlib.sha1(blob_url.encode()).hexdigest()  # tiktoken's cache key, not security


def find_encoding_file(encoding: PublicEncoding, cache_dir: str | None) -> Path | None:
    """The local BPE file for `encoding`, following the search order in the module docstring."""
    if cache_dir is not None:
        shipped = Path(cache_dir) / f"{encoding.name}.tiktoken"
        if shipped.is_file():
            if _sha256_of(shipped) != encoding.sha256:
                logger.warning(
                    "%s is not the published %s file (checksum differs); using it as given",
                    shipped,
                    encoding.name,
                )
            return shipped
    search_dir = Path(cache_dir) if cache_dir is not None else tiktoken_cache_dir()
    if search_dir is None:
        return None
    cached = search_dir / tiktoken_cache_file_name(encoding.blob_url)
    if not cached.is_file():
        return None
    if _sha256_of(cached) != encoding.sha256:
        logger.warning(
            "ignoring %s: it does not match the published %s checksum", cached, encoding.name
        )
        return None
    return cached


def read_tiktoken_bpe(path: Path) -> dict[bytes, int]:
    """Parse a `.tiktoken` file (`<base64 token> <rank>` per line).

    Not `tiktoken.load.load_tiktoken_bpe`: that copies the file into tiktoken's cache directory
    as a side effect, which is unwanted on a read-only or shared file system.
    """
    ranks: dict[bytes, int] = {}
    for line_number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error) as error:
            raise ValueError(f"{path}:{line_number}: not a `<base64> <rank>` line") from error
    missing_bytes = [value for value in range(256) if bytes([value]) not in ranks]
    if missing_bytes:
        # tiktoken's BPE panics on a byte it has no token for; refuse the file instead.
        raise ValueError(f"{path}: no token for {len(missing_bytes)} of the 256 single bytes")
    return ranks


def make_token_counter(
    encoding_name: str = "o200k_base", cache_dir: str | None = None
) -> TokenCounter:
    """A tiktoken counter when the encoding file is on local disk, else the estimate.

    Never downloads. Logs which method it chose and why, so an operator can see that counts
    are estimates and ship the encoding file if they want exact ones. The parsed encoding is
    cached per file, so calling this once per job is cheap.
    """
    encoding = PUBLIC_ENCODINGS.get(encoding_name)
    if encoding is None:
        logger.warning(
            "unknown token encoding %r (known: %s); estimating token counts",
            encoding_name,
            ", ".join(sorted(PUBLIC_ENCODINGS)),
        )
        return EstimatingTokenCounter()
    path = find_encoding_file(encoding, cache_dir)
    if path is None:
        logger.info(
            "no local %s file (looked in %s); estimating token counts as %s",
            encoding_name,
            cache_dir if cache_dir is not None else tiktoken_cache_dir(),
            ESTIMATE_METHOD,
        )
        return EstimatingTokenCounter()
    stat = path.stat()
    try:
        return _load_tiktoken_counter(encoding.name, path, stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError) as error:
        logger.warning("cannot use %s (%s); estimating token counts", path, error)
        return EstimatingTokenCounter()


@lru_cache(maxsize=4)
def _load_tiktoken_counter(
    encoding_name: str, path: Path, mtime_ns: int, size: int
) -> TiktokenCounter:
    # mtime and size are part of the cache key so a replaced file is read again.
    del mtime_ns, size
    encoding = PUBLIC_ENCODINGS[encoding_name]
    built = tiktoken.Encoding(
        encoding.name,
        pat_str=encoding.pat_str,
        mergeable_ranks=read_tiktoken_bpe(path),
        special_tokens=dict(encoding.special_tokens),
    )
    logger.info("counting tokens with tiktoken %s from %s", encoding.name, path)
    return TiktokenCounter(built)


def _sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
