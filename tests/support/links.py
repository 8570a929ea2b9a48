"""Find the links a reader could follow in feeds and emails."""

import html
import re
import xml.etree.ElementTree as ET

ATOM = "{http://www.w3.org/2005/Atom}"
_HTML_URL = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']*)["']""")
_SRCSET = re.compile(r"""\bsrcset\s*=\s*["']([^"']*)["']""")
# A tracked link in an email: /r/<delivery part>/<link part>/.
_TRACKED = re.compile(r"https?://[^/\s\"'<>]+/r/[^/\s]+/([^/\s\"'<>]+)/")


def html_links(text: str) -> list[str]:
    """Return every href, src and srcset address in an HTML fragment."""
    found = [html.unescape(url) for url in _HTML_URL.findall(text)]
    for srcset in _SRCSET.findall(text):
        found += [c.strip().split(" ")[0] for c in html.unescape(srcset).split(",")]
    return found


def untracked(text: str) -> str:
    """Return an email part with each tracked link replaced by where it leads."""
    from issues.sending.emails.tracking import read_link_part

    def target(match: re.Match) -> str:
        link = read_link_part(match.group(1))
        return link.url if link is not None else match.group(0)

    return _TRACKED.sub(target, text)


def feed_links(xml_text: str) -> tuple[list[str], list[str]]:
    """Return (the feed's own addresses, the links inside its items' HTML)."""
    root = ET.fromstring(xml_text)  # noqa: S314 - our own feed, in a test
    own, inside = [], []
    if root.tag == "rss":
        channel = root.find("channel")
        own.append(channel.findtext("link"))
        own += [link.get("href") for link in channel.iter(f"{ATOM}link")]
        for item in channel.iter("item"):
            own += [item.findtext("link"), item.findtext("guid")]
            inside += html_links(item.findtext("description") or "")
    else:
        own += [link.get("href") for link in root.iter(f"{ATOM}link")]
        own += [entry.findtext(f"{ATOM}id") for entry in root.iter(f"{ATOM}entry")]
        for entry in root.iter(f"{ATOM}entry"):
            inside += html_links(entry.findtext(f"{ATOM}summary") or "")
    return own, inside
