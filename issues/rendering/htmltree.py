"""How deep, and how large in tables, HTML would be once parsed: a linear estimate.

The sanitizer (html5ever, in nh3) and the email's CSS inliner are native code that
walk the parsed tree recursively: a document nested thousands of elements deep
makes the first quadratic and crashes the second. This module reads markup the
way an HTML parser's tokenizer does (tags, attributes in quotes, comments, raw text
such as <script>) and keeps a stack of open elements, without building a tree.

The depth it reports is never less than the parser's, up to a small factor: an end
tag closes an element only when that element is the innermost one open (after
elements whose end tag HTML may leave out, such as <p> and <li>), where a browser
would sometimes close more. Those elements (and <td>, <tr>...) count no level of
their own, since HTML never nests them directly in each other; a table adds at
most four levels for its one. Everything is a forward scan with str.find and
anchored regular expressions of single character classes: no backtracking, no
recursion, time linear in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

VOID_TAGS = frozenset({
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr",
    "image", "img", "input", "keygen", "link", "meta", "param", "source", "track",
    "wbr",
})  # fmt: skip
# Closed by the parser when a sibling starts ("generate implied end tags"): they
# add no level, and an end tag for an element around them closes them first.
IMPLIED_END_TAGS = frozenset(
    {"p", "li", "dt", "dd", "option", "optgroup", "rb", "rp", "rt", "rtc"}
)
TABLE_PARTS = frozenset(
    {"tbody", "thead", "tfoot", "tr", "td", "th", "caption", "colgroup"}
)
_TABLE_CLOSABLE = TABLE_PARTS | IMPLIED_END_TAGS | {"table"}
# Their text runs to the matching end tag, whatever it contains.
RAW_TEXT_TAGS = frozenset({
    "script", "style", "xmp", "iframe", "noembed", "noframes", "noscript",
    "textarea", "title",
})  # fmt: skip
# Everything after it is text: it has no end tag.
PLAINTEXT_TAG = "plaintext"

_TAG_NAME = re.compile(r"[^\s/>]*")
_SPACE_OR_SLASH = re.compile(r"[\s/]*")
_SPACE = re.compile(r"\s*")
_ATTR_NAME = re.compile(r"[^\s/>][^\s/>=]*")
_UNQUOTED = re.compile(r"[^\s>]*")
_COMMENT_END = re.compile(r"--!?>")
_RAW_TEXT_END: dict[str, re.Pattern] = {}


def _run_end(pattern: re.Pattern[str], text: str, pos: int, end: int = -1) -> int:
    """Return where pattern's run starting at pos ends (pos when nothing matches)."""
    match = pattern.match(text, pos) if end < 0 else pattern.match(text, pos, end)
    return match.end() if match else pos


def _raw_text_end(name: str) -> re.Pattern:
    if name not in _RAW_TEXT_END:
        _RAW_TEXT_END[name] = re.compile(rf"</{name}(?=[\s/>])", re.IGNORECASE)
    return _RAW_TEXT_END[name]


# What read_markup found at a "<".
TEXT, START, END, SKIP, UNTERMINATED = "text", "start", "end", "skip", "eof"


@dataclass(frozen=True)
class Markup:
    kind: str  # TEXT ("<" as a character), START, END, SKIP (comment), UNTERMINATED
    end: int  # where reading goes on
    name: str = ""


# A tag as the Markdown renderer writes them: names and double-quoted values
# without "<" or ">". Where it matches, a parser ends the tag at the same ">"; the
# rest goes to the reader below. Each part starts with a different character, so
# a failed match gives back at most its own length.
_PLAIN_TAG = re.compile(
    r'<(/?)([A-Za-z][A-Za-z0-9-]*)(?:\s+[A-Za-z_:][-A-Za-z0-9_:.]*(?:="[^"<>]*")?)*'
    r"\s*/?>"
)


def read_markup(text: str, pos: int) -> Markup:
    """Read the tag, comment or declaration starting at text[pos] ("<")."""
    plain = _PLAIN_TAG.match(text, pos)
    if plain is not None:
        return Markup(END if plain[1] else START, plain.end(), plain[2].lower())
    n = len(text)
    nxt = text[pos + 1] if pos + 1 < n else ""
    if nxt.isascii() and nxt.isalpha():
        return _read_tag(text, pos + 1, START)
    if nxt == "/":
        after = text[pos + 2] if pos + 2 < n else ""
        if after.isascii() and after.isalpha():
            return _read_tag(text, pos + 2, END)
        if after == ">":
            return Markup(SKIP, pos + 3)
        if not after:
            return Markup(TEXT, pos + 1)
        return _bogus_comment(text, pos + 2)
    if nxt == "!":
        if text.startswith("<!--", pos):
            # "<!-->" and "<!--->" are whole (empty) comments.
            for short in ("<!-->", "<!--->"):
                if text.startswith(short, pos):
                    return Markup(SKIP, pos + len(short))
            match = _COMMENT_END.search(text, pos + 4)
            if match is None:
                return Markup(UNTERMINATED, n)
            return Markup(SKIP, match.end())
        return _bogus_comment(text, pos + 2)
    if nxt == "?":
        return _bogus_comment(text, pos + 2)
    return Markup(TEXT, pos + 1)


def _bogus_comment(text: str, pos: int) -> Markup:
    end = text.find(">", pos)
    return Markup(UNTERMINATED, len(text)) if end < 0 else Markup(SKIP, end + 1)


def _read_tag(text: str, pos: int, kind: str) -> Markup:
    n = len(text)
    name_end = _run_end(_TAG_NAME, text, pos)
    name = text[pos:name_end].lower()
    pos = name_end
    while True:
        pos = _run_end(_SPACE_OR_SLASH, text, pos)
        if pos >= n:
            return Markup(UNTERMINATED, n)
        if text[pos] == ">":
            return Markup(kind, pos + 1, name)
        pos = _run_end(_ATTR_NAME, text, pos)
        after = _run_end(_SPACE, text, pos)
        if after < n and text[after] == "=":
            pos = _run_end(_SPACE, text, after + 1)
            if pos < n and text[pos] in "\"'":
                close = text.find(text[pos], pos + 1)
                if close < 0:
                    return Markup(UNTERMINATED, n)
                pos = close + 1
            else:
                pos = _run_end(_UNQUOTED, text, pos)
        else:
            pos = after


def raw_text_end(text: str, name: str, pos: int) -> int:
    """Return where the raw text of a <name> element opened before pos ends, or -1."""
    if name == PLAINTEXT_TAG:
        return -1
    match = _raw_text_end(name).search(text, pos)
    return -1 if match is None else match.start()


@dataclass
class TableSize:
    line: int
    rows: int = 0
    cells: int = 0


@dataclass
class OpenElements:
    """The elements open at a point of a document, as far as depth and tables go."""

    depth: int = 0
    stack: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    tables: list[TableSize] = field(default_factory=list)

    def start(self, name: str, line: int = 0) -> TableSize | None:
        """Open an element; return the table it made larger, if any."""
        if name in VOID_TAGS:
            return None
        self.stack.append(name)
        self.counts[name] = self.counts.get(name, 0) + 1
        if name not in IMPLIED_END_TAGS and name not in TABLE_PARTS:
            self.depth += 1
        if name == "table":
            self.tables.append(TableSize(line))
        elif self.tables and name in ("tr", "td", "th"):
            table = self.tables[-1]
            if name == "tr":
                table.rows += 1
            else:
                table.cells += 1
            return table
        return None

    def end(self, name: str) -> None:
        """Close an element if it is the innermost one open (see the module doc)."""
        if not self.counts.get(name):
            return
        # The end of a table, or of a part of one, closes the cells left open in it.
        closable = _TABLE_CLOSABLE if name in _TABLE_CLOSABLE else IMPLIED_END_TAGS
        stack = self.stack
        while stack[-1] != name and stack[-1] in closable:
            self._pop()
        if stack[-1] == name:
            self._pop()

    def _pop(self) -> None:
        name = self.stack.pop()
        self.counts[name] -= 1
        if name not in IMPLIED_END_TAGS and name not in TABLE_PARTS:
            self.depth -= 1
        if name == "table":
            self.tables.pop()


@dataclass(frozen=True)
class HtmlTooLarge:
    what: str  # "depth", "rows" or "cells"
    amount: int


def measure_html(
    text: str, *, max_depth: int, max_rows: int, max_cells: int
) -> HtmlTooLarge | None:
    """Return a limit the parsed HTML would go over, or None.

    A table is reported as soon as it is too large; the depth, at the end, is the
    deepest point (for the author's message).
    """
    elements = OpenElements()
    deepest = 0
    plain_tag, find = _PLAIN_TAG.match, text.find
    pos = find("<")
    while pos >= 0:
        # Most tags are plain (the renderer's own): read them without the reader.
        plain = plain_tag(text, pos)
        if plain is not None:
            kind, end, name = END if plain[1] else START, plain.end(), plain[2]
        else:
            markup = read_markup(text, pos)
            kind, end, name = markup.kind, markup.end, markup.name
        if kind == START:
            name = name.lower()
            table = elements.start(name)
            if elements.depth > deepest:
                deepest = elements.depth
            if table is not None and table.rows > max_rows:
                return HtmlTooLarge("rows", table.rows)
            if table is not None and table.cells > max_cells:
                return HtmlTooLarge("cells", table.cells)
            if name in RAW_TEXT_TAGS or name == PLAINTEXT_TAG:
                raw_end = raw_text_end(text, name, end)
                if raw_end < 0:
                    break  # the rest is text
                pos = find("<", raw_end)
                continue
        elif kind == END:
            elements.end(name.lower())
        elif kind == UNTERMINATED:
            break  # the rest is inside a tag or comment
        pos = find("<", end)
    return HtmlTooLarge("depth", deepest) if deepest > max_depth else None
