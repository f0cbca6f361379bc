"""Text that decodes without error but is mojibake: a UTF-8 file read with a single-byte encoding.

A file configured as `encoding: latin-1` (or cp1252, …) always decodes: every byte is some
character. When the file is really UTF-8, each accented or non-Latin letter comes out as two or
three wrong characters ("Zoë" as "ZoÃ«") and would be published as such. `find_mojibake`
looks at each line holding a non-ASCII byte and calls it mis-decoded when both:

- ftfy (the well-kept mojibake fixer) judges the decoded text bad (`ftfy.badness.is_bad`), and
- the line's bytes are valid UTF-8, so UTF-8 is what the file is (the likely encoding).

Legitimate latin-1 / cp1252 text ("Zoë" as the single byte 0xEB) is neither: ftfy finds nothing
odd in it, and its accented bytes are not valid UTF-8. The check is pure (bytes in, a finding
out); `sources.readers` turns a finding into a one-line `SourceReadError`.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["MojibakeFinding", "find_mojibake", "is_single_byte_text_encoding"]


@dataclass(frozen=True)
class MojibakeFinding:
    """Lines of a file that read as mojibake: the first one (1-based), how many, out of how many
    lines hold a non-ASCII byte, how many of those are valid UTF-8 (all of them: the file is
    UTF-8; some: it mixes encodings), and the encoding the file most likely is."""

    first_line: int
    lines: int
    non_ascii_lines: int
    utf8_lines: int
    likely_encoding: str = "utf-8"

    def message(self, encoding: str) -> str:
        """One line for the user, without quoting the file's content."""
        share = f"{self.lines:,} of {self.non_ascii_lines:,} lines with non-ASCII text"
        if self.utf8_lines == self.non_ascii_lines:
            fix = f"the file is likely {self.likely_encoding}: set `encoding: {self.likely_encoding}`"
        else:
            fix = (
                f"those lines are likely {self.likely_encoding}, the rest not: the file mixes "
                "encodings; export it again in one encoding"
            )
        return (
            f"text decoded as {encoding} reads as mojibake (UTF-8 letters turned into two or "
            f"three characters, {share}): {fix}"
        )


def is_single_byte_text_encoding(encoding: str) -> bool:
    """Whether `encoding` is one where UTF-8 bytes always decode without error into other
    characters: ASCII-compatible and not UTF-8 itself (latin-1, cp1252, iso-8859-15, …)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    if name in ("utf-8", "utf-8-sig"):
        return False
    try:
        return b"\n,;\"a0".decode(name) == "\n,;\"a0" and len("é".encode(name, errors="strict")) == 1
    except (UnicodeError, LookupError):
        return False


def find_mojibake(data: bytes, encoding: str) -> MojibakeFinding | None:
    """The lines of `data` that, decoded as `encoding`, are UTF-8 read wrongly; None when there
    are none (always None for an ASCII-only file or an encoding this check does not apply to)."""
    if data.isascii() or not is_single_byte_text_encoding(encoding):
        return None
    from ftfy.badness import is_bad

    first = None
    bad = non_ascii = utf8 = 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        non_ascii += 1
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            continue  # not UTF-8: whatever it is, the configured encoding may well be right
        utf8 += 1
        if is_bad(line.decode(encoding, errors="replace")):
            bad += 1
            first = first or number
    if not bad:
        return None
    return MojibakeFinding(
        first_line=first or 1, lines=bad, non_ascii_lines=non_ascii, utf8_lines=utf8
    )
