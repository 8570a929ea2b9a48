"""The plain-text alternative of an issue email, made from its rendered HTML."""

from __future__ import annotations

import re
from html.parser import HTMLParser


class _TextExtractor(HTMLParser):
    """Turn rendered issue HTML into a readable plain-text email body."""

    BLOCK = {"p", "div", "section", "article", "table", "tr", "blockquote", "pre"}
    HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.links: list[str | None] = []
        self.pre = 0
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("style", "script", "head", "title"):
            self.skip += 1
        elif tag in self.BLOCK or tag in self.HEADINGS:
            self.out.append("\n\n")
            if tag in self.HEADINGS:
                self.out.append("#" * int(tag[1]) + " ")
            if tag == "pre":
                self.pre += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "a":
            self.links.append(attrs.get("href"))
        elif tag == "img" and attrs.get("alt"):
            self.out.append(f"[{attrs['alt']}]")

    def handle_endtag(self, tag):
        if tag in ("style", "script", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith("#"):
                self.out.append(f" ({href})")
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self.out.append("\n\n")
        elif tag in self.BLOCK or tag in self.HEADINGS:
            self.out.append("\n\n")

    def handle_data(self, data):
        if self.skip:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        text = "".join(self.out)
        lines = [line.rstrip() for line in text.splitlines()]
        text = "\n".join(
            line.lstrip() if line.startswith(" ") else line for line in lines
        )
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def html_to_text(html_text: str) -> str:
    """Return a plain-text version of rendered HTML, paragraphs kept."""
    parser = _TextExtractor()
    parser.feed(html_text)
    parser.close()
    return parser.text()
