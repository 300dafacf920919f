"""Decoding an uploaded file into text, or rejecting it with a reason a person can act on.

Pure: no network, no storage, no SDK. Text files only: `.txt`, `.md`, `.json`, `.csv` (any
case). A name with no extension is accepted when its bytes decode as text, because portal
uploads and blob names often have none; the decoding rules below still reject binary content.
Line endings are normalised to `\\n`.
"""

from __future__ import annotations

import codecs
from pathlib import PurePosixPath
from typing import Literal

SUPPORTED_EXTENSIONS = (".txt", ".md", ".json", ".csv")

MAX_DOCUMENT_BYTES_SETTING = "MAX_DOCUMENT_BYTES"
RejectionCode = Literal["empty", "not_text", "unsupported_type", "too_large", "too_many_chunks"]

_CONVERT_HINT = (
    "PDF and Word files must be converted to plain text (.txt or .md, UTF-8) before they are "
    "submitted."
)


class DocumentRejected(Exception):
    """The document cannot be processed as submitted; retrying the same input will not help.

    `code` is for machines (`empty`, `not_text`, `unsupported_type`, `too_large`,
    `too_many_chunks`); `reason` says what is wrong and what to do about it.
    """

    def __init__(self, code: RejectionCode, reason: str) -> None:
        super().__init__(reason)
        self.code: RejectionCode = code
        self.reason = reason


# UTF-32 first: its little-endian mark begins with UTF-16's.
_BYTE_ORDER_MARKS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)

_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF file"),
    (b"PK\x03\x04", "a ZIP archive (Word .docx, Excel .xlsx and PowerPoint .pptx are ZIPs)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office file (.doc, .xls or .ppt)"),
    (b"{\\rtf", "an RTF file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


def decode_document(name: str, data: bytes, *, max_bytes: int) -> str:
    """The document's text, or `DocumentRejected` saying why it cannot be read.

    Checks, in order: extension, size, emptiness, encoding (UTF-8 with or without BOM, UTF-16
    or UTF-32 with BOM), then whitespace-only content. `\\r\\n` and `\\r` become `\\n`.
    """
    extension = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    if extension and extension not in SUPPORTED_EXTENSIONS:
        raise DocumentRejected(
            "unsupported_type",
            f'"{name}" is a {extension} file; only text files are processed '
            f"({', '.join(SUPPORTED_EXTENSIONS)}, or a text file with no extension). "
            + _CONVERT_HINT,
        )
    if len(data) > max_bytes:
        raise DocumentRejected(
            "too_large",
            f'"{name}" is {_human_size(len(data))} ({len(data):,} bytes), over the limit of '
            f"{_human_size(max_bytes)} ({max_bytes:,} bytes). Split it into smaller documents, "
            f"or raise the {MAX_DOCUMENT_BYTES_SETTING} app setting.",
        )
    if not data:
        raise DocumentRejected(
            "empty", f'"{name}" is empty (0 bytes). Submit a file that contains the text.'
        )
    text = _decode_text(name, data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DocumentRejected(
            "empty",
            f'"{name}" contains only whitespace ({len(data):,} bytes). Submit a file that '
            "contains the text.",
        )
    return text


def _decode_text(name: str, data: bytes) -> str:
    for mark, codec, label in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as error:
                raise DocumentRejected(
                    "not_text",
                    f'"{name}" starts with a {label} byte-order mark but is not valid {label} '
                    f"({error.reason} at byte {error.start}). Save it again as UTF-8 text. "
                    + _CONVERT_HINT,
                ) from None
            if "\x00" in text:
                raise DocumentRejected(
                    "not_text",
                    f'"{name}" contains NUL characters, so it is not a text file. ' + _CONVERT_HINT,
                )
            return text
    for signature, kind in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise DocumentRejected("not_text", f'"{name}" is {kind}, not text. ' + _CONVERT_HINT)
    if b"\x00" in data:
        raise DocumentRejected(
            "not_text",
            f'"{name}" contains NUL bytes, so it is binary (or UTF-16 without a byte-order '
            "mark), not UTF-8 text. " + _CONVERT_HINT,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DocumentRejected(
            "not_text",
            f'"{name}" is not valid UTF-8 text ({error.reason} at byte {error.start}). Save '
            "it as UTF-8 text. " + _CONVERT_HINT,
        ) from None


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"
