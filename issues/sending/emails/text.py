"""The plain-text alternative of an issue email, made from its rendered HTML.

It reads the markup ``issues.rendering`` writes: code blocks (``<pre>``) are kept
character for character, footnote references read ``[1]`` and their notes are listed
at the end under "Notes", heading permalinks are dropped, and a paper card puts its
title, authors and identifiers on lines of their own.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import cast

# Code is set aside while the prose around it is tidied, then put back as it was.
_CODE = "\x00{}\x00"
_CODE_RE = re.compile("\x00(\\d+)\x00")


def _classes(attrs: dict) -> set[str]:
    return set((attrs.get("class") or "").split())


class _TextExtractor(HTMLParser):
    """Turn rendered issue HTML into a readable plain-text email body."""

    BLOCK = {
        "p", "div", "section", "article", "table", "tr", "blockquote", "figure",
        "figcaption", "dl", "dt", "dd", "details", "summary",
    }  # fmt: skip
    HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
    SKIP = {"style", "script", "head", "title"}
    VOID = {"br", "hr", "img", "input", "meta", "link", "source", "wbr"}
    # Lines of their own inside a paper card.
    CARD_LINES = {"paper-card-title", "paper-card-meta", "paper-card-links"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.notes: list[str] = []
        self.code: list[str] = []
        # For each open element: what to do when it closes.
        self.stack: list[tuple[str, str]] = []
        self.links: list[tuple[str | None, list[str], int]] = []
        self.quotes: list[tuple[list[str], int]] = []
        self.lists: list[list[int | None]] = []
        self.skip = 0
        self.pre: list[str] | None = None
        self.note: list[str] | None = None
        self.cell = 0
        self.footnote_ref = 0
        self.inline_code = 0

    # -- output -----------------------------------------------------------------------
    def _target(self) -> list[str]:
        return self.note if self.note is not None else self.out

    def _write(self, text: str) -> None:
        self._target().append(text)

    def _trailing_newlines(self) -> int | None:
        """Return how many newlines end the output (None when nothing is written)."""
        count = 0
        for piece in reversed(self._target()):
            stripped = piece.rstrip("\n")
            count += len(piece) - len(stripped)
            if stripped:
                return count
        return None

    def _break(self, newlines: int = 2) -> None:
        """End the current line, and leave blank lines up to newlines - 1."""
        have = self._trailing_newlines()
        if have is not None and have < newlines:
            self._write("\n" * (newlines - have))

    def _at_line_start(self) -> bool:
        return self._trailing_newlines() != 0

    # -- parsing ----------------------------------------------------------------------
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = _classes(attrs)
        action = ""
        if self.skip or tag in self.SKIP:
            action = "skip"
        elif self.pre is not None:
            action = ""  # inside <pre>, only the characters count
        elif "header-anchor" in classes or "footnote-backref" in classes:
            # The heading's "#" permalink and the note's "↩︎" back-link.
            action = "skip"
        elif "footnotes-sep" in classes:
            action = ""
        elif tag == "sup" and "footnote-ref" in classes:
            self.footnote_ref += 1
            action = "footnote-ref"
        elif self.footnote_ref and tag == "a":
            # "[1]", also where the same note is referenced again ("[1:1]").
            number = re.match(r"#fn(\d+)", attrs.get("href") or "")
            if number:
                self._write(f"[{number.group(1)}]")
            action = "skip"
        elif tag == "section" and "footnotes" in classes:
            self.lists.append([None])
            action = "footnotes"
        elif tag == "li" and "footnote-item" in classes:
            number = re.fullmatch(r"fn(\d+)", attrs.get("id") or "")
            self.note = [f"[{number.group(1) if number else len(self.notes) + 1}] "]
            action = "note"
        elif tag == "pre":
            self.pre = []
            action = "pre"
        elif tag == "code":
            self.inline_code += 1
            action = "code"
        elif tag == "blockquote":
            self._break()
            target = self._target()
            self.quotes.append((target, len(target)))
            action = "quote"
        elif tag in self.HEADINGS:
            self._break()
            self._write("#" * int(tag[1]) + " ")
            action = "block"
        elif tag == "li":
            depth = max(len(self.lists) - 1, 0)
            numbers = self.lists[-1] if self.lists else [None]
            if numbers[0] is None:
                marker = "-"
            else:
                marker = f"{numbers[0]}."
                numbers[0] += 1
            self._break(1)
            self._write("  " * depth + marker + " ")
            action = "item"
        elif tag in ("ul", "ol"):
            start = attrs.get("start") or "1"
            self.lists.append([int(start) if tag == "ol" and start.isdigit() else None])
            self._break(1 if len(self.lists) > 1 else 2)
            action = "list"
        elif tag == "tr":
            self._break(1)
            self.cell = 0
            action = ""
        elif tag in ("td", "th"):
            if self.cell:
                self._write(" | ")
            self.cell += 1
        elif "paper-card" in classes:
            self._break()
            action = "block"
        elif classes & self.CARD_LINES:
            if "paper-card-title" not in classes:
                self._break(1)
        elif tag in self.BLOCK:
            if not self._in_item_start():
                self._break()
            action = "block"
        elif tag == "br":
            self._write("\n")
        elif tag == "hr":
            self._break()
            self._write("---")
            self._break()
        elif tag == "img" and "math" in classes and attrs.get("alt"):
            # A formula's image: its LaTeX, as the author wrote it.
            marks = "$$" if "math-display" in classes else "$"
            if marks == "$$":
                self._break()
            self._write(f"{marks}{attrs['alt']}{marks}")
            if marks == "$$":
                self._break()
        elif tag == "img" and attrs.get("alt"):
            self._write(f"[{attrs['alt']}]")
        if tag == "a" and action != "skip":
            target = self._target()
            self.links.append((attrs.get("href"), target, len(target)))
            action = "link"
        if action == "skip":
            self.skip += 1
        if tag not in self.VOID:
            self.stack.append((tag, action))

    def _in_item_start(self) -> bool:
        """Return whether the text written last is a list marker ("- ", "[1] ")."""
        last = next((piece for piece in reversed(self._target()) if piece), "")
        return bool(re.fullmatch(r"\s*(?:-|\d+\.|\[\d+\]) ", last))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        # Close whatever was left open inside this element (HTML allows it).
        while self.stack:
            open_tag, action = self.stack.pop()
            self._close(action)
            if open_tag == tag:
                break

    def _close(self, action: str) -> None:
        if action == "skip":
            self.skip = max(0, self.skip - 1)
        elif action == "pre":
            pre = cast("list[str]", self.pre)  # set when the <pre> opened
            self.code.append("".join(pre).removeprefix("\n").rstrip("\n"))
            self.pre = None
            self._break()
            self._write(_CODE.format(len(self.code) - 1))
            self._break()
        elif action == "footnote-ref":
            self.footnote_ref -= 1
        elif action == "link":
            href, target, start = self.links.pop()
            label = "".join(target[start:]).strip()
            # A bare address written as a link (<https://…>) is not repeated.
            shown = href and label not in (href, href.removeprefix("mailto:"))
            if shown and not cast(str, href).startswith("#") and not self.skip:
                self._write(f" ({href})")
        elif action == "note":
            note = cast("list[str]", self.note)  # set when the note opened
            text = re.sub(r"\s+", " ", "".join(note)).strip()
            self.note = None
            self.notes.append(text)
        elif action == "code":
            self.inline_code -= 1
        elif action == "quote":
            target, start = self.quotes.pop()
            quoted = "".join(target[start:]).strip("\n")
            del target[start:]
            self._write("\n".join(f"> {line}".rstrip() for line in quoted.splitlines()))
            self._break()
        elif action in ("list", "footnotes"):
            if self.lists:
                self.lists.pop()
            self._break(2 if not self.lists else 1)
        elif action == "block":
            self._break()

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre is not None:
            self.pre.append(data)
            return
        if self.inline_code:
            self.code.append(data.replace("\n", " "))
            self._write(_CODE.format(len(self.code) - 1))
            return
        text = re.sub(r"\s+", " ", data)
        if self._at_line_start() or self._in_item_start():
            text = text.lstrip()
        if text:
            self._write(text)

    # -- result -----------------------------------------------------------------------
    def text(self) -> str:
        text = "".join(self.out)
        if self.notes:
            text += "\n\nNotes\n\n" + "\n".join(self.notes) + "\n"
        # Prose only: code is still set aside, so its spacing is untouched.
        text = "\n".join(
            re.sub(r"(?<=\S) {2,}", " ", line).rstrip() for line in text.splitlines()
        )
        text = re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
        return _CODE_RE.sub(lambda m: self.code[int(m.group(1))], text)


def email_plain_text(html_text: str) -> str:
    """Return the email's plain-text part for its rendered HTML body."""
    parser = _TextExtractor()
    # NUL marks where code was set aside; it has no business in the HTML itself.
    parser.feed(html_text.replace("\x00", ""))
    parser.close()
    return parser.text()
