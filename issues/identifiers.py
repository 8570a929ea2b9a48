"""Paper identifiers: arXiv ids and DOIs, checked and stored bare.

Authors paste what arXiv and doi.org show them (links, ``arXiv:2307.09288``,
``doi:10.…``); the model fields tidy that to the bare identifier before validating,
so the admin form, any other ModelForm and ``full_clean`` agree, and ``Paper.save``
tidies papers made in code the same way.
"""

import re
from urllib.parse import unquote

from django.core.exceptions import ValidationError
from django.db import models

# New style (2201.03545; 0704.0001 with four digits until 1412) and old style
# (hep-th/9901001, math.GT/0309136), each with an optional version suffix (v2).
ARXIV_ID_RE = re.compile(
    r"^(?:(?P<yy>\d{2})(?P<mm>\d{2})\.(?P<num>\d{4,5})"
    r"|[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7})(?:v[1-9]\d*)?$"
)
ARXIV_ID_MESSAGE = (
    "Enter an arXiv id such as 2201.03545 or hep-th/9901001 (optionally with a "
    "version, e.g. 2201.03545v2), or paste the paper's arxiv.org link."
)
# What authors paste from arXiv: its links (abstract, PDF, HTML; any mirror host
# under arxiv.org) and the "arXiv:2201.03545" form it prints on every paper.
ARXIV_LINK_RE = re.compile(
    r"^(?:https?://)?(?:[a-z]+\.)?arxiv\.org/(?:abs|pdf|html)/(?P<id>[^?#]+?)"
    r"(?:\.pdf)?/?(?:[?#].*)?$",
    re.IGNORECASE,
)
ARXIV_PREFIX_RE = re.compile(r"^arxiv:\s*", re.IGNORECASE)
# A DOI as a link (doi.org, dx.doi.org) or with the "doi:" prefix.
DOI_LINK_RE = re.compile(
    r"^(?:https?://)?(?:dx\.)?doi\.org/(?P<doi>.+)$", re.IGNORECASE
)
DOI_PREFIX_RE = re.compile(r"^doi:\s*", re.IGNORECASE)
# Crossref's recommended pattern, which matches nearly every DOI it has
# registered: "10.", a registrant code of four to nine digits, "/", a suffix.
DOI_RE = re.compile(r"^10\.\d{4,9}/[-._;()/:A-Za-z0-9]+$")
DOI_MESSAGE = (
    "Enter a DOI such as 10.59350/abcde-12345, or paste its https://doi.org/ link."
)


def normalize_arxiv_id(value: str) -> str:
    """Return the bare arXiv id of an id as arXiv shows it (link, arXiv:…)."""
    value = (value or "").strip()
    match = ARXIV_LINK_RE.match(value)
    if match is not None:
        return match.group("id")
    return ARXIV_PREFIX_RE.sub("", value)


def normalize_doi(value: str) -> str:
    """Return the bare DOI of a DOI given as a doi.org link or with doi:."""
    value = (value or "").strip()
    match = DOI_LINK_RE.match(value)
    if match is not None:
        # Links escape characters that DOIs keep as they are (10.1002/(SICI)…).
        return unquote(match.group("doi"))
    return DOI_PREFIX_RE.sub("", value)


def validate_doi(value: str) -> None:
    """Raise ValidationError unless value is a well-formed bare DOI."""
    if not DOI_RE.match(value or ""):
        raise ValidationError(DOI_MESSAGE, code="invalid_doi")


def validate_arxiv_id(value: str) -> None:
    """Raise ValidationError unless value is a well-formed arXiv identifier."""
    match = ARXIV_ID_RE.match(value or "")
    ok = match is not None
    if match is not None and match.group("yy") is not None:
        yymm, digits = int(match.group("yy") + match.group("mm")), len(match["num"])
        ok = 1 <= int(match.group("mm")) <= 12 and (
            (digits == 4 and 704 <= yymm <= 1412) or (digits == 5 and yymm >= 1501)
        )
    if not ok:
        raise ValidationError(ARXIV_ID_MESSAGE, code="invalid_arxiv_id")


class NormalizedCharField(models.CharField):
    """A CharField that tidies what the author pasted before it is validated.

    Model validation (the admin, any ModelForm, full_clean) runs to_python before
    the validators, so every path checks and stores the same bare value.
    """

    # The form accepts a pasted link longer than the bare value that is stored.
    form_max_length = 500

    def __init__(self, *args, normalize=None, **kwargs):
        self.normalize = normalize
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        # The function is code, not schema: migrations need not know it.
        return name, "django.db.models.CharField", args, kwargs

    def to_python(self, value):
        value = super().to_python(value)
        if value is None or self.normalize is None:
            return value
        return self.normalize(value)

    def formfield(self, **kwargs):
        return super().formfield(**{"max_length": self.form_max_length, **kwargs})
