"""Decoding an uploaded file into text, or rejecting it."""

from __future__ import annotations

import codecs

import pytest

from shared.documents.decoding import SUPPORTED_EXTENSIONS, DocumentRejected, decode_document


def rejection(name: str, data: bytes, max_bytes: int = 10_000) -> DocumentRejected:
    with pytest.raises(DocumentRejected) as raised:
        decode_document(name, data, max_bytes=max_bytes)
    return raised.value


# --- Decoding ---------------------------------------------------------------------------------


def test_supported_extensions_are_the_text_types() -> None:
    assert SUPPORTED_EXTENSIONS == (".txt", ".md", ".json", ".csv")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Clause 1: pay €5.\n".encode(), "Clause 1: pay €5.\n"),
        (codecs.BOM_UTF8 + b"Clause 1", "Clause 1"),
        (codecs.BOM_UTF16_LE + "Clause 1 €".encode("utf-16-le"), "Clause 1 €"),
        (codecs.BOM_UTF16_BE + "Clause 1 €".encode("utf-16-be"), "Clause 1 €"),
        (codecs.BOM_UTF32_LE + "Clause 1".encode("utf-32-le"), "Clause 1"),
        (b"a\r\nb\rc\n", "a\nb\nc\n"),
    ],
)
def test_text_is_decoded_with_bom_and_line_endings_normalised(data: bytes, expected: str) -> None:
    assert decode_document("contract.txt", data, max_bytes=10_000) == expected


@pytest.mark.parametrize("name", ["a.TXT", "notes.Md", "data.JSON", "rows.csv", "dir.v2/README"])
def test_supported_extensions_in_any_case_and_no_extension_are_accepted(name: str) -> None:
    assert decode_document(name, b"text", max_bytes=10) == "text"


@pytest.mark.parametrize(("name", "extension"), [("offer.pdf", ".pdf"), ("Offer.DOCX", ".docx")])
def test_unsupported_extensions_are_rejected_before_reading(name: str, extension: str) -> None:
    error = rejection(name, b"%PDF-1.7 huge" * 10_000)

    assert error.code == "unsupported_type"
    assert error.reason == (
        f'"{name}" is a {extension} file; only text files are processed (.txt, .md, .json, '
        ".csv, or a text file with no extension). PDF and Word files must be converted to plain "
        "text (.txt or .md, UTF-8) before they are submitted."
    )


def test_too_large_says_the_size_and_the_limit() -> None:
    error = rejection("big.txt", b"a" * 2048, max_bytes=1000)

    assert error.code == "too_large"
    assert error.reason == (
        '"big.txt" is 2.0 KiB (2,048 bytes), over the limit of 1000 B (1,000 bytes). Split it '
        "into smaller documents, or raise the MAX_DOCUMENT_BYTES app setting."
    )


def test_the_limit_itself_is_allowed() -> None:
    assert decode_document("edge.txt", b"a" * 1000, max_bytes=1000) == "a" * 1000


@pytest.mark.parametrize("data", [b"", b" \n\t\r\n ", codecs.BOM_UTF8, codecs.BOM_UTF8 + b"\n"])
def test_empty_and_whitespace_only_documents_are_rejected(data: bytes) -> None:
    error = rejection("blank.txt", data)

    assert error.code == "empty"
    assert error.reason.startswith('"blank.txt" ')
    assert error.reason.endswith("Submit a file that contains the text.")


@pytest.mark.parametrize(
    ("name", "data", "start"),
    [
        ("scan.txt", b"%PDF-1.7\n%\xe2\xe3", '"scan.txt" is a PDF file, not text.'),
        ("report", b"PK\x03\x04\x14\x00", '"report" is a ZIP archive (Word .docx'),
        ("old.txt", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", '"old.txt" is a legacy Office file'),
        ("blob", b"abc\x00def", '"blob" contains NUL bytes, so it is binary'),
        ("wide.txt", "no bom".encode("utf-16-le"), '"wide.txt" contains NUL bytes'),
        (
            "latin1.txt",
            "café au lait".encode("latin-1"),
            '"latin1.txt" is not valid UTF-8 text (invalid continuation byte at byte 3).',
        ),
        (
            "odd.txt",
            codecs.BOM_UTF16_LE + b"a\x00b",
            '"odd.txt" starts with a UTF-16 byte-order mark but is not valid UTF-16 (truncated '
            "data at byte 4).",
        ),
    ],
)
def test_binary_content_is_not_text_and_says_to_convert(name: str, data: bytes, start: str) -> None:
    error = rejection(name, data)

    assert error.code == "not_text"
    assert error.reason.startswith(start)
    assert error.reason.endswith(
        "PDF and Word files must be converted to plain text (.txt or .md, UTF-8) before they are "
        "submitted."
    )


def test_rejection_is_an_exception_whose_message_is_the_reason() -> None:
    error = rejection("x.exe", b"MZ")

    assert str(error) == error.reason
