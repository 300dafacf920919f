"""Which names a caller may choose: input blob names and batch prefixes.

Callers name things the app then writes under: an uploader names an input blob (its outcomes
are named after it), a batch's starter names its run and its prefixes. These rules keep every
such name apart from the names the app keeps for itself, so no caller's choice can produce a
name another job or run owns:

- the output container's reserved folders: `versions/` (every version's own outcome) and
  `refused/` (the error records of names refused here) are never the start of an outcome
  name a caller's document gets;
- control, format (bidirectional marks, zero-width characters), surrogate and private-use
  characters are refused in prefixes and input names: storage listings choke on some of them,
  and the others make a name look like another one;
- names whose outcomes would pass storage's 1,024-character limit are refused up front.

Pure functions: each returns what is wrong, in words, or None.
"""

from __future__ import annotations

import hashlib
import unicodedata

# The output container's folders the app keeps for itself (see shared/documents/outcomes.py).
VERSIONS_PREFIX = "versions/"
REFUSED_PREFIX = "refused/"
RESERVED_OUTPUT_PREFIXES: tuple[str, ...] = (VERSIONS_PREFIX, REFUSED_PREFIX)
# Azure Storage's limit on a blob name.
MAX_BLOB_NAME = 1024
# What a document's outcome names add to its name: `versions/<name>/<24 hex>.result.json`.
OUTCOME_NAME_OVERHEAD = len(VERSIONS_PREFIX) + len("/") + 24 + len(".result.json")
MAX_PREFIX_CHARS = 512
# Unicode categories refused in caller-chosen prefixes: control (Cc), format (Cf: direction
# marks, zero-width joiners), surrogate (Cs), private use (Co), unassigned (Cn), line and
# paragraph separators (Zl, Zp).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def reserved_prefix_of(name: str) -> str | None:
    """The reserved folder `name` lies in, or None."""
    return next((p for p in RESERVED_OUTPUT_PREFIXES if name.startswith(p)), None)


def refused_output_name(name: str) -> str | None:
    """Why a document's outcomes may not be named after `name` (an input blob's name, or a
    batch's joined output name), or None when they may."""
    unsafe = unsafe_characters(name)
    if unsafe:
        return (
            f"the name contains control, format or invisible characters ({', '.join(unsafe[:5])})"
            ": outcomes are not named after it (storage listings choke on some, and the others "
            "make a name look like another one); upload the document under a visible name"
        )
    reserved = reserved_prefix_of(name)
    if reserved is not None:
        return (
            f"the name {_short(name)} is under {reserved!r}, a folder the app keeps for its own "
            "records in the output container; upload the document under another name"
        )
    if len(name) + OUTCOME_NAME_OVERHEAD > MAX_BLOB_NAME:
        return (
            f"the name is {len(name)} characters long; its outcome names would pass storage's "
            f"limit of {MAX_BLOB_NAME}: use a name of at most "
            f"{MAX_BLOB_NAME - OUTCOME_NAME_OVERHEAD} characters"
        )
    return None


def refusal_record_name(name: str) -> str:
    """Where the error record of a refused `name` goes: `refused/<name>.error.json`, or, for a
    name too long for that or with characters refused, a visible, shortened name made unique
    by a digest of the whole name."""
    full = f"{REFUSED_PREFIX}{name}.error.json"
    if len(full) <= MAX_BLOB_NAME and not unsafe_characters(name):
        return full
    digest = hashlib.sha256(name.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]
    visible = "".join(
        "_" if unicodedata.category(char) in _REFUSED_CATEGORIES else char for char in name[:900]
    )
    return f"{REFUSED_PREFIX}{visible}~{digest}.error.json"


def unsafe_characters(text: str) -> list[str]:
    """The characters of `text` refused in a caller-chosen name, described (`U+202E`)."""
    return [
        f"U+{ord(char):04X}"
        for char in dict.fromkeys(text)
        if unicodedata.category(char) in _REFUSED_CATEGORIES
    ]


def prefix_problem(label: str, prefix: str) -> str | None:
    """What is wrong with a caller-chosen blob prefix (`label` names it), or None."""
    if len(prefix) > MAX_PREFIX_CHARS:
        return f"{label} is {len(prefix)} characters long; at most {MAX_PREFIX_CHARS}"
    unsafe = unsafe_characters(prefix)
    if unsafe:
        return (
            f"{label} {_short(prefix)} contains control, format or invisible characters "
            f"({', '.join(unsafe[:5])}); use visible characters only"
        )
    if prefix.startswith("/") or ".." in prefix.split("/"):
        return f"{label} {_short(prefix)} must be a relative blob prefix without '..'"
    return None


def output_prefix_problem(prefix: str) -> str | None:
    """Whether outcomes named `<prefix><anything>` could fall in a reserved folder (checked on
    the joined name: `versions` joined with `/a.txt` is `versions/a.txt`)."""
    if not prefix:
        return None  # every joined name is checked on its own (`refused_output_name`)
    for reserved in RESERVED_OUTPUT_PREFIXES:
        if prefix.startswith(reserved) or reserved.startswith(prefix):
            return (
                f"output_prefix {prefix!r} would name outcomes under {reserved!r}, a folder "
                "the app keeps for its own records (reserved); choose another output prefix"
            )
    return None


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else f"{text[:77]}...")
