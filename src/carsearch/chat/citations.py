"""Citations: every [n] marker in an answer must stand for a listing the assistant was
shown. Markers are renumbered in the order they appear; a marker with no listing behind
it is removed, never invented."""

from __future__ import annotations

import re
from collections.abc import Sequence

from carsearch.chat.schemas import Citation, ShownListing

_MARKER = re.compile(r"\[(\d{1,3})\]")


def cite(answer: str, shown: Sequence[ShownListing]) -> tuple[str, list[Citation]]:
    """`answer` with its markers renumbered 1, 2, ... by first appearance, and the
    citations in that order. `shown[i]` is what marker [i + 1] refers to."""
    numbers: dict[int, int] = {}
    citations: list[Citation] = []

    def renumber(match: re.Match[str]) -> str:
        original = int(match.group(1))
        if not 1 <= original <= len(shown):
            return ""  # nothing behind it: gone
        if original not in numbers:
            numbers[original] = len(numbers) + 1
            listing = shown[original - 1]
            citations.append(Citation(index=numbers[original], **listing.model_dump()))
        return f"[{numbers[original]}]"

    text = _MARKER.sub(renumber, answer)
    # A removed marker can leave a space before punctuation or a doubled space.
    text = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    return text, citations
