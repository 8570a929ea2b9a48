"""Limits on what an author writes, checked before any parser sees the text.

``check_markdown(text)`` raises ``ContentTooLarge`` for Markdown longer than
``QUIRE_BODY_MAX_CHARS``, nested deeper than ``QUIRE_BODY_MAX_DEPTH`` (quotes, lists,
emphasis and HTML elements inside each other, counted together), or with a table of
more than ``QUIRE_TABLE_MAX_ROWS`` rows or ``QUIRE_TABLE_MAX_CELLS`` cells; its
message names the line and says how to fix it. ``check_html(html)`` is the second
gate, on the HTML the Markdown parser made, just before the sanitizer: whatever the
first one misjudged, native code never gets a document nested thousands deep.

The scan of Markdown reads each line once: its quote and list markers, then only
the characters that can open something (``<``, emphasis, backticks, backslashes),
found with str.find and anchored regular expressions of single character classes
(no backtracking, no recursion). Code (fenced blocks, code spans) is skipped, and
emphasis counts only when it is closed, the way the parser pairs it, so ``**kwargs``
in a code sample or ``a<b`` in prose costs nothing.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError

from .htmltree import (
    PLAINTEXT_TAG,
    RAW_TEXT_TAGS,
    OpenElements,
    measure_html,
    raw_text_end,
)

# The parsed HTML may nest a little deeper than the Markdown it came from (a paper
# card, a footnote list, highlighted code): the second gate allows this much more.
HTML_DEPTH_FACTOR, HTML_DEPTH_MARGIN = 2, 20


def _run_end(pattern: re.Pattern[str], text: str, pos: int, end: int = -1) -> int:
    """Return where pattern's run starting at pos ends (pos when nothing matches)."""
    match = pattern.match(text, pos) if end < 0 else pattern.match(text, pos, end)
    return match.end() if match else pos


@dataclass(frozen=True)
class ContentLimits:
    max_chars: int
    max_depth: int
    max_table_rows: int
    max_table_cells: int

    @classmethod
    def from_settings(cls) -> ContentLimits:
        """Return the limits configured in settings (see newsletter/settings.py)."""
        return cls(
            max_chars=settings.QUIRE_BODY_MAX_CHARS,
            max_depth=settings.QUIRE_BODY_MAX_DEPTH,
            max_table_rows=settings.QUIRE_TABLE_MAX_ROWS,
            max_table_cells=settings.QUIRE_TABLE_MAX_CELLS,
        )


class ContentTooLarge(ValueError):
    """Text over one of Quire's limits; the message says what and how to fix it."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def brace_depth(text: str) -> int:
    """How deeply braces nest in text (LaTeX, BibTeX): measured before a parser
    that recurses on them sees it."""
    depth = deepest = 0
    for char in text:
        if char == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif char == "}":
            depth -= 1
    return deepest


def check_markdown(text: str, *, limits: ContentLimits | None = None) -> None:
    """Raise ContentTooLarge if Markdown is over a limit; read it once, linearly."""
    limits = limits or ContentLimits.from_settings()
    text = text or ""
    if len(text) > limits.max_chars:
        raise ContentTooLarge(
            f"This text is {len(text):,} characters long; at most "
            f"{limits.max_chars:,} are allowed. Shorten it, or split it into two "
            "issues."
        )
    depth, line = _Scan(text, limits).run()
    if depth > limits.max_depth:
        raise ContentTooLarge(
            f"This text is nested {depth:,} levels deep at line {line}; at most "
            f"{limits.max_depth} levels are allowed. Quotes, lists, emphasis "
            "(*, _, ~~) and HTML tags inside each other each add a level: close "
            "the tags and emphasis opened there, or flatten the lists and quotes.",
            line=line,
        )


def check_html(html_text: str, *, limits: ContentLimits | None = None) -> None:
    """Raise ContentTooLarge if parsed HTML would nest too deep or hold a huge table."""
    limits = limits or ContentLimits.from_settings()
    too_large = measure_html(
        html_text,
        max_depth=limits.max_depth * HTML_DEPTH_FACTOR + HTML_DEPTH_MARGIN,
        max_rows=limits.max_table_rows,
        max_cells=limits.max_table_cells,
    )
    if too_large is None:
        return
    if too_large.what == "depth":
        raise ContentTooLarge(
            f"This text makes HTML nested {too_large.amount:,} levels deep, far "
            f"past the {limits.max_depth} levels of quotes, lists, emphasis and "
            "HTML tags allowed. Close the HTML tags you opened (a tag inside "
            "another's quotes does not close it)."
        )
    raise _table_error(too_large.what, too_large.amount, limits, line=None)


def validate_markdown_limits(value: str) -> None:
    """Raise ValidationError if Markdown is over a limit (a model field validator)."""
    try:
        check_markdown(value)
    except ContentTooLarge as exc:
        raise ValidationError(exc.message, code="too_large") from None


def _table_error(
    what: str, amount: int, limits: ContentLimits, *, line: int | None
) -> ContentTooLarge:
    where = f"The table at line {line}" if line else "A table"
    limit = limits.max_table_rows if what == "rows" else limits.max_table_cells
    return ContentTooLarge(
        f"{where} has {amount:,} {what}; at most {limit:,} are allowed. Split it "
        "into smaller tables, or link to the full data as a file.",
        line=line,
    )


# --- The scan ------------------------------------------------------------------------
# The characters where something may open or close; everything else is skipped.
_SPECIAL = re.compile(r"[\n<\\`*_~]")
_RUN = {char: re.compile(re.escape(char) + "+") for char in "`*_~"}
_DELIMITER_CELL = re.compile(r":?-+:?")
_FENCE = re.compile(r"`{3,}|~{3,}")
_TAG_NAME = re.compile(r"[A-Za-z0-9-]*")
_COMMENT_END = re.compile(r"--!?>")
_FENCE_CODE, _FENCE_CLOSED, _FENCE_ENDED = "code", "closed", "ended"


def _is_punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char)[0] in "PS"


@dataclass
class _Run:
    """An emphasis delimiter run that may open: the levels it turned out to open."""

    remaining: int
    levels: int = 0


@dataclass
class _Paragraph:
    """What happened in a paragraph, in order, to find its deepest point at the end."""

    html_depth: int
    events: list = field(default_factory=list)
    openers: dict[str, list[_Run]] = field(default_factory=dict)


class _Scan:
    def __init__(self, text: str, limits: ContentLimits) -> None:
        self.text = text
        self.limits = limits
        self.html = OpenElements()
        self.deepest = (0, 1)
        self.paragraph = _Paragraph(0)
        self.line = 0
        # Raw-text elements with no end tag after this position (searched once).
        self.unclosed_from: dict[str, int] = {}
        self.table: tuple[int, int, int] | None = None  # line, columns, rows
        self.header: tuple[int, int] | None = None  # a line that may head a table
        # The next ">", "<" and comment end at or after some position: each search
        # moves forward only, so reading every tag costs one pass in all.
        self.found: dict[str, int] = {}

    def run(self) -> tuple[int, int]:
        """Return the deepest nesting found and its line."""
        text = self.text
        pos, n = 0, len(text)
        fence = None
        while pos <= n:
            self.line += 1
            end = text.find("\n", pos)
            end = n if end < 0 else end
            if fence is not None:
                state = self._in_fence(pos, end, fence)
                if state != _FENCE_ENDED:
                    fence = None if state == _FENCE_CLOSED else fence
                    pos = end + 1
                    continue
                fence = None
            pos, fence = self._line(pos, end)
        self._end_paragraph()
        return self.deepest

    # --- lines ---------------------------------------------------------------------
    def _line(self, pos: int, end: int) -> tuple[int, object]:
        """Read a line; return where the next one starts, and a fence it opened."""
        text = self.text
        start, depth, quotes, in_list = self._prefix(pos, end)
        content = text[start:end].strip()
        if not content:
            self._end_paragraph()
            self.table = self.header = None
            return end + 1, None
        self._table_line(content)
        fence = _FENCE.match(content)
        if fence is not None and (
            fence[0][0] == "~" or "`" not in content[fence.end() :]
        ):
            self._end_paragraph()
            # Inside a list item, code goes on while lines are indented under it.
            indent = start - pos if in_list else 0
            return end + 1, (fence[0][0], len(fence[0]), indent, quotes)
        if content.startswith("#"):
            self._end_paragraph()  # a heading is a paragraph of its own
        self.paragraph.events.append(("block", self.line, depth))
        if _is_thematic_break(content):
            return end + 1, None
        next_pos = self._inline(start, end)
        if content.startswith("#"):
            self._end_paragraph()
        return next_pos, None

    def _prefix(self, pos: int, end: int) -> tuple[int, int, int, bool]:
        """Return where a line's content starts, its nesting, its quote markers and
        whether it is in a list item.

        Indentation counts a level per two columns (a nested list item is indented
        at least that much under its parent), quote and list markers one each.
        """
        text = self.text
        i = pos
        while i < end and text[i] in " \t":
            i += 1
        width = text.count("\t", pos, i) * 3 + (i - pos)
        depth, quotes, in_list = width // 2, 0, width >= 2
        # The last column of the line that is not this character or a space: a
        # thematic break ("* * *") follows the markers only after it.
        last_other: dict[str, int] = {}
        while i < end:
            char = text[i]
            if char in "*-_":
                if char not in last_other:
                    last_other[char] = pos + len(text[pos:end].rstrip(char + " \t"))
                if last_other[char] <= i and text.count(char, i, end) >= 3:
                    break  # a thematic break, not a list marker
            if char == ">":
                i, depth, quotes = i + 1, depth + 1, quotes + 1
            elif char in "-+*" and (i + 1 == end or text[i + 1] in " \t"):
                i, depth, in_list = i + 1, depth + 1, True
            elif char.isdigit():
                j = i
                while j < end and j - i < 9 and text[j].isdigit():
                    j += 1
                if not (j < end and text[j] in ".)"):
                    break
                if not (j + 1 == end or text[j + 1] in " \t"):
                    break
                i, depth, in_list = j + 1, depth + 1, True
            else:
                break
            while i < end and text[i] in " \t":
                i += 1
        return i, depth, quotes, in_list

    def _in_fence(self, pos: int, end: int, fence) -> str:
        """Return whether this line is code, closes the fence, or ended it before."""
        char, length, indent, quotes = fence
        text = self.text
        i, seen = pos, 0
        while seen < quotes and i < end:
            if text[i] == ">":
                seen += 1
            elif text[i] not in " \t":
                break
            i += 1
        line = text[i:end]
        if not line.strip():
            return _FENCE_CODE
        if seen < quotes or (indent and len(line) - len(line.lstrip()) < indent):
            return _FENCE_ENDED  # its list or quote ended, and the code with it
        stripped = line.strip()
        run = _RUN[char].match(stripped)
        if run is not None and run.end() >= length and not stripped[run.end() :]:
            return _FENCE_CLOSED
        return _FENCE_CODE

    # --- tables --------------------------------------------------------------------
    def _table_line(self, content: str) -> None:
        """Count a line of a pipe table (rows run to the next blank line)."""
        if self.table is not None:
            line, columns, rows = self.table
            self.table = (line, columns, rows + 1)
            self._check_table(line, rows + 1, (rows + 1) * columns)
            return
        if self.header is not None and "-" in content and _is_delimiter_row(content):
            line, header_cells = self.header
            columns = max(header_cells, content.strip("|").count("|") + 1)
            self.table = (line, columns, 1)
            self._check_table(line, 1, columns)
        if "|" in content and self.table is None:
            self.header = (self.line, content.strip("|").count("|") + 1)
        else:
            self.header = None

    def _check_table(self, line: int, rows: int, cells: int) -> None:
        limits = self.limits
        if rows > limits.max_table_rows:
            raise _table_error("rows", rows, limits, line=line)
        if cells > limits.max_table_cells:
            raise _table_error("cells", cells, limits, line=line)

    # --- inline --------------------------------------------------------------------
    def _inline(self, pos: int, end: int) -> int:
        """Read a line's content; return where the next line to read starts."""
        text = self.text
        code_spans = None
        while True:
            match = _SPECIAL.search(text, pos, end)
            if match is None:
                return end + 1
            i = match.start()
            char = text[i]
            if char == "\\":
                pos = i + 2 if i + 1 < end else i + 1
            elif char == "`":
                if code_spans is None:
                    code_spans = _code_spans(text, pos, end)
                pos = code_spans.get(i, _run_end(_RUN["`"], text, i))
            elif char == "<":
                pos = self._markup(i)
                if pos > end:
                    # A tag, comment or script ran over lines: go on after it.
                    self.line += text.count("\n", i, pos)
                    end = text.find("\n", pos)
                    end = len(text) if end < 0 else end
                    code_spans = None
            else:
                pos = self._emphasis(i, end, char)

    def _next(self, what: str, pos: int) -> int:
        """Return where the next what ('>', '<' or '-->') is at or after pos, or -1."""
        found = self.found.get(what)
        if found is None or (0 <= found < pos):
            if what == "-->":
                match = _COMMENT_END.search(self.text, pos)
                found = -1 if match is None else match.end()
            else:
                found = self.text.find(what, pos)
            self.found[what] = found
        return found

    def _markup(self, i: int) -> int:
        """Read the tag or comment at text[i] ("<"); return where reading goes on.

        A tag counts when its ">" comes before the next "<", as the Markdown
        parser wants it; anything it misreads (a ">" inside quotes) the second
        gate, on the parsed HTML, reads exactly.
        """
        text = self.text
        nxt = text[i + 1 : i + 2]
        closing = nxt == "/"
        if closing:
            nxt = text[i + 2 : i + 3]
        if nxt == "!" and not closing:
            if text.startswith("<!--", i):
                end = self._next("-->", i + 4)
            else:
                end = self._next(">", i) + 1
            # Not closed: text for the Markdown parser; read on.
            return i + 1 if end <= 0 else end
        if not (nxt.isascii() and nxt.isalpha()):
            return i + 1
        name_start = i + (2 if closing else 1)
        name_end = _run_end(_TAG_NAME, text, name_start)
        gt = self._next(">", name_end)
        lt = self._next("<", name_end)
        if gt < 0 or (0 <= lt < gt):
            return name_end  # not a tag: "a<b" in a sentence
        name = text[name_start:name_end].lower()
        if closing:
            self.html.end(name)
        elif name in RAW_TEXT_TAGS or name == PLAINTEXT_TAG:
            end = self._raw_text(name, gt + 1)
            if end < 0:
                # Unclosed: the renderer shows the tag as text; read on after it.
                return gt + 1
            self.html.start(name, self.line)
            self.paragraph.events.append(("html", self.line, self.html.depth))
            return end
        else:
            table = self.html.start(name, self.line)
            if table is not None:
                self._check_table(table.line, table.rows, table.cells)
        self.paragraph.events.append(("html", self.line, self.html.depth))
        return gt + 1

    def _raw_text(self, name: str, pos: int) -> int:
        """Return where the text of a <script>, <style>... ends, or -1 if unclosed."""
        if self.unclosed_from.get(name, len(self.text) + 1) <= pos:
            return -1
        end = raw_text_end(self.text, name, pos)
        if end < 0:
            self.unclosed_from[name] = pos
        return end

    def _emphasis(self, i: int, end: int, char: str) -> int:
        text = self.text
        run_end = _run_end(_RUN[char], text, i, end)
        before = text[i - 1] if i > 0 and text[i - 1] != "\n" else " "
        after = text[run_end] if run_end < end else " "
        left = not after.isspace() and (
            not _is_punctuation(after) or before.isspace() or _is_punctuation(before)
        )
        right = not before.isspace() and (
            not _is_punctuation(before) or after.isspace() or _is_punctuation(after)
        )
        if char == "_":
            can_open = left and (not right or _is_punctuation(before))
            can_close = right and (not left or _is_punctuation(after))
        else:
            can_open, can_close = left, right
        remaining = run_end - i
        openers = self.paragraph.openers.setdefault(char, [])
        if can_close and openers:
            closed = 0
            while remaining and openers:
                opener = openers[-1]
                matched = min(opener.remaining, remaining)
                levels = (matched + 1) // 2
                opener.levels += levels
                closed += levels
                opener.remaining -= matched
                remaining -= matched
                if not opener.remaining:
                    openers.pop()
            self.paragraph.events.append(("close", self.line, closed))
        if remaining and can_open:
            opener = _Run(remaining)
            openers.append(opener)
            self.paragraph.events.append(("open", self.line, opener))
        return run_end

    def _end_paragraph(self) -> None:
        """Find the deepest point of the paragraph just read, then start another."""
        paragraph = self.paragraph
        block, html, emphasis = 0, paragraph.html_depth, 0
        deepest, line = self.deepest
        for kind, at, value in paragraph.events:
            if kind == "block":
                block = value
            elif kind == "html":
                html = value
            elif kind == "open":
                emphasis += value.levels
            else:
                emphasis -= value
            if block + html + emphasis > deepest:
                deepest, line = block + html + emphasis, at
        self.deepest = (deepest, line)
        self.paragraph = _Paragraph(self.html.depth)


def _code_spans(text: str, start: int, end: int) -> dict[int, int]:
    """Return the code spans of a line: where each opens -> where it ends."""
    runs = [(m.start(), m.end()) for m in _RUN["`"].finditer(text, start, end)]
    spans: dict[int, int] = {}
    # Each run closes at the next run of the same length (found right to left).
    next_of_length: dict[int, int] = {}
    closer_of: list[int | None] = [None] * len(runs)
    for index in range(len(runs) - 1, -1, -1):
        length = runs[index][1] - runs[index][0]
        closer_of[index] = next_of_length.get(length)
        next_of_length[length] = index
    index = 0
    while index < len(runs):
        closer = closer_of[index]
        if closer is None:
            index += 1
            continue
        spans[runs[index][0]] = runs[closer][1]
        index = closer + 1
    return spans


def _is_thematic_break(content: str) -> bool:
    if len(content) < 3 or content[0] not in "*-_":
        return False
    bare = content.replace(" ", "").replace("\t", "")
    return len(bare) >= 3 and bare == bare[0] * len(bare)


def _is_delimiter_row(content: str) -> bool:
    cells = content.strip().strip("|").split("|")
    return all(_DELIMITER_CELL.fullmatch(cell.strip()) for cell in cells)
