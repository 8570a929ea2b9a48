"""A paper's details as an API gave them, ready to fill the admin's Paper form."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

# Both fields hold at most this many characters (issues.models.Paper).
TITLE_MAX = 500
VENUE_MAX = 200
# A repository link in an abstract or an arXiv comment ("Code: https://github…").
CODE_URL_RE = re.compile(
    r"https?://(?:www\.)?(?:github\.com|gitlab\.com|huggingface\.co)/[\w.-]+/[\w.-]+",
    re.IGNORECASE,
)


@dataclass
class PaperDetails:
    title: str
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    venue: str = ""
    summary: str = ""  # the abstract, as plain text
    arxiv_id: str = ""  # with its version when it came from arXiv (2201.03545v2)
    doi: str = ""
    url: str = ""
    code_url: str = ""
    # arXiv's latest version of the paper, when arXiv was asked.
    arxiv_version: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PaperDetails:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def tidy(text: str | None) -> str:
    """Return text with its runs of whitespace (line breaks included) made one space."""
    return " ".join((text or "").split())


def code_url_in(*texts: str) -> str:
    """Return the first code repository linked in these texts, or ""."""
    for text in texts:
        match = CODE_URL_RE.search(text or "")
        if match:
            return match.group(0).rstrip(".")
    return ""
