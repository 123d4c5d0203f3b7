"""Markdown sections: headings with their level and trail, fenced code kept whole."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Section:
    """A markdown section: ``text[start:end]`` under the heading path ``headings``."""

    start: int
    end: int
    headings: tuple[str, ...]


_HEADING = re.compile(r" {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*\r?\n?$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def markdown_sections(text: str) -> list[Section]:
    """Split markdown at ATX headings (outside fenced code); each section starts at its heading line."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    start, heads = 0, ()
    fence = ""
    pos = 0
    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line)
        if m and (not fence or m.group(1).startswith(fence)):
            fence = "" if fence else m.group(1)[:3]
        elif not fence and (h := _HEADING.match(line)) and h.group(2).strip():
            if pos > start:
                sections.append(Section(start, pos, heads))
            level = len(h.group(1))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, h.group(2).strip()))
            start, heads = pos, tuple(t for _, t in stack)
        pos += len(line)
    if len(text) > start:
        sections.append(Section(start, len(text), heads))
    return sections


__all__ = ["Section", "markdown_sections"]
