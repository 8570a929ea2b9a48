"""An unclosed <script> or <style> in prose shows as text instead of hiding the rest.

An HTML parser reads everything after <script>, <style>, <textarea>... as the
element's text until its end tag; without one, the rest of the issue would vanish in
the sanitizer (which drops such elements whole). Two markdown-it rules keep it:

- ``html_block_unless_unclosed`` stops a line starting ``<script>`` (or <style>,
  <textarea>) from opening an HTML block when no end tag follows anywhere: such a
  block would run to the end of the text and swallow every paragraph after it.
- ``escape_unclosed_raw_text`` turns each such start tag that no end tag follows
  into text, in inline HTML and in HTML blocks alike, so it reads "<script>".
"""

from __future__ import annotations

import re

from markdown_it.rules_block.html_block import html_block
from markdown_it.rules_block.state_block import StateBlock

from .htmltree import PLAINTEXT_TAG, RAW_TEXT_TAGS

_NAMES = "|".join(sorted(RAW_TEXT_TAGS | {PLAINTEXT_TAG}))
# A start or end tag of a raw-text element: a literal alternation, no backtracking.
_RAW_TAG = re.compile(rf"<(/?)({_NAMES})(?=[\s/>]|$)", re.IGNORECASE)
# What opens an HTML block that only its end tag closes (CommonMark's type 1).
_BLOCK_START = re.compile(r"<(script|style|textarea)(?=[\s>]|$)", re.IGNORECASE)
_BLOCK_END = re.compile(r"</(script|pre|style|textarea)>", re.IGNORECASE)


def _last_block_end(state: StateBlock) -> int:
    env = state.env
    if "_raw_block_end" not in env:
        ends = [match.start() for match in _BLOCK_END.finditer(state.src)]
        env["_raw_block_end"] = ends[-1] if ends else -1
    return env["_raw_block_end"]


def html_block_unless_unclosed(
    state: StateBlock, start_line: int, end_line: int, silent: bool
) -> bool:
    """markdown-it's html_block, except for a <script> block nothing closes."""
    pos = state.bMarks[start_line] + state.tShift[start_line]
    if _BLOCK_START.match(state.src, pos) and _last_block_end(state) < pos:
        return False  # a paragraph then, whose tag escape_unclosed_raw_text shows
    return html_block(state, start_line, end_line, silent)


def escape_unclosed_raw_text(state) -> None:
    """Turn each <script>, <style>... start tag that nothing closes into text."""
    found = []  # (token, offset in its content, closing?, name), in document order
    for token in state.tokens:
        if token.type == "html_block":
            found += _raw_tags(token)
        elif token.type == "inline":
            for child in token.children or ():
                if child.type == "html_inline":
                    found += _raw_tags(child)
    if not found:
        return
    # Whether an end tag of the same element comes later, read right to left.
    closed_later, ends_seen = [False] * len(found), set()
    for index in range(len(found) - 1, -1, -1):
        _token, _at, closing, name = found[index]
        closed_later[index] = name in ends_seen
        if closing:
            ends_seen.add(name)
    # Then as the HTML parser reads them: inside an element's text, tags are text.
    to_escape: dict[int, tuple] = {}
    inside = None
    for index, (token, at, closing, name) in enumerate(found):
        if inside is not None:
            if closing and name == inside:
                inside = None
        elif not closing:
            if closed_later[index] and name != PLAINTEXT_TAG:
                inside = name
            else:
                to_escape.setdefault(id(token), (token, []))[1].append(at)
    for token, offsets in to_escape.values():
        _escape_at(token, offsets)


def _raw_tags(token) -> list[tuple]:
    return [
        (token, match.start(), bool(match.group(1)), match.group(2).lower())
        for match in _RAW_TAG.finditer(token.content)
    ]


def _escape_at(token, offsets: list[int]) -> None:
    if token.type == "html_inline":
        # The whole token is the tag: as text, the renderer escapes it.
        token.type = "text"
        return
    content, parts, last = token.content, [], 0
    for at in offsets:
        parts += [content[last:at], "&lt;"]
        last = at + 1
    parts.append(content[last:])
    token.content = "".join(parts)
