"""A paper's details asked of arXiv and Crossref (a local server answering as them)."""

import json
import threading
import time

import pytest
from django.core.cache import cache
from werkzeug import Response

from issues.paper_metadata import (
    ApiBusy,
    ApiUnreachable,
    Identifier,
    PaperLookupError,
    PaperNotFound,
    lookup_paper,
    parse_identifier,
)
from issues.paper_metadata.arxiv import parse_feed
from issues.paper_metadata.pacing import Pace
from tests.support.paper_apis import (
    ARXIV_PATH,
    ATOM,
    answer_arxiv,
    answer_crossref,
    arxiv_requests,
    fixture_bytes,
)

DOI = "10.1109/CVPR52688.2022.01167"


# --- What the author pastes -----------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2201.03545", Identifier("arxiv", "2201.03545")),
        ("arXiv:2201.03545v1", Identifier("arxiv", "2201.03545v1")),
        ("https://arxiv.org/abs/2201.03545v2", Identifier("arxiv", "2201.03545v2")),
        ("https://arxiv.org/pdf/2201.03545.pdf", Identifier("arxiv", "2201.03545")),
        (
            "http://export.arxiv.org/abs/hep-th/9901001",
            Identifier("arxiv", "hep-th/9901001"),
        ),
        ("[[arxiv:2301.99999]]", Identifier("arxiv", "2301.99999")),
        (DOI, Identifier("doi", DOI)),
        (f"doi:{DOI}", Identifier("doi", DOI)),
        (f"https://doi.org/{DOI}", Identifier("doi", DOI)),
        (
            "https://dx.doi.org/10.1002/%28SICI%291097",
            Identifier("doi", "10.1002/(SICI)1097"),
        ),
        (
            "https://dl.acm.org/doi/10.1145/3292500.3330701",
            Identifier("doi", "10.1145/3292500.3330701"),
        ),
        (f"[[doi:{DOI}]]", Identifier("doi", DOI)),
    ],
)
def test_an_id_or_link_is_read_as_the_paper_it_names(text, expected):
    assert parse_identifier(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "convnext", "https://example.org/paper.pdf", "arxiv:../../etc", "x" * 600],
)
def test_what_names_no_paper_is_refused_with_what_to_paste(text):
    with pytest.raises(PaperLookupError, match="Paste an arXiv id"):
        parse_identifier(text)


# --- arXiv ----------------------------------------------------------------------------
def test_arxiv_fills_title_authors_year_venue_abstract_and_links(paper_apis):
    answer_arxiv(paper_apis, "arxiv_convnext.atom", ids=["2201.03545"])

    details = lookup_paper("https://arxiv.org/abs/2201.03545")

    assert details.title == "A ConvNet for the 2020s"
    assert details.authors == [
        "Zhuang Liu", "Hanzi Mao", "Chao-Yuan Wu", "Christoph Feichtenhofer",
        "Trevor Darrell", "Saining Xie",
    ]  # fmt: skip
    assert details.year == 2022
    assert details.venue == "CVPR 2022"
    assert details.summary.startswith('The "Roaring 20s" of visual recognition began')
    assert "\n" not in details.summary
    assert details.arxiv_id == "2201.03545v2"  # the version the author reads now
    assert details.arxiv_version == 2
    assert details.doi == DOI
    assert details.code_url == "https://github.com/facebookresearch/ConvNeXt"
    (request,) = arxiv_requests(paper_apis)
    assert "Quire/" in request.headers["User-Agent"]


def test_a_versioned_id_keeps_the_version_the_author_read(paper_apis):
    answer_arxiv(paper_apis, "arxiv_convnext.atom", ids=["2201.03545"])

    details = lookup_paper("arXiv:2201.03545v1")

    assert details.arxiv_id == "2201.03545v1"
    assert details.arxiv_version == 2


def test_asking_again_is_answered_from_the_cache(paper_apis):
    answer_arxiv(paper_apis, "arxiv_convnext.atom", ids=["2201.03545"])

    first = lookup_paper("2201.03545")
    again = lookup_paper("https://arxiv.org/abs/2201.03545v2")

    assert again.title == first.title
    assert len(arxiv_requests(paper_apis)) == 1


def test_an_id_arxiv_does_not_have_says_so(paper_apis):
    answer_arxiv(paper_apis, "arxiv_no_results.atom", ids=["2301.99999"])

    with pytest.raises(PaperNotFound, match=r"^arXiv has no paper 2301\.99999\.$"):
        lookup_paper("2301.99999")
    # Asked again, the "no" is remembered for a while.
    with pytest.raises(PaperNotFound):
        lookup_paper("2301.99999")
    assert len(arxiv_requests(paper_apis)) == 1


def test_an_id_arxiv_calls_malformed_is_no_paper(paper_apis):
    answer_arxiv(paper_apis, "arxiv_incorrect_id.atom", ids=["9999.99999"], status=400)

    with pytest.raises(PaperNotFound, match=r"^arXiv has no paper 9999\.99999 "):
        lookup_paper("9999.99999")


def test_arxiv_asking_to_slow_down_is_said_and_kept_to(paper_apis):
    paper_apis.expect_request("/api/query").respond_with_data(
        "Rate exceeded.", status=503, headers={"Retry-After": "120"}
    )

    with pytest.raises(
        ApiBusy, match=r"^arXiv asks us to slow down, try again in 120 s\.$"
    ):
        lookup_paper("2201.03545")
    # Any other paper meanwhile is refused here, without asking arXiv again.
    with pytest.raises(
        ApiBusy, match=r"arXiv asks us to slow down, try again in 1[12]\d s"
    ):
        lookup_paper("1706.03762")
    assert len(arxiv_requests(paper_apis)) == 1


@pytest.mark.parametrize(
    "fixture", ["arxiv_billion_laughs.atom", "arxiv_external_entity.atom"]
)
def test_hostile_xml_is_refused_without_expanding_anything(paper_apis, fixture):
    answer_arxiv(paper_apis, fixture, ids=["2201.03545"])

    with pytest.raises(ApiUnreachable, match="not its feed") as caught:
        lookup_paper("2201.03545")
    assert "root:" not in str(caught.value)  # nothing of /etc/passwd
    assert "lol" not in str(caught.value)


def test_hostile_xml_never_reaches_a_dtd_when_parsed_directly():
    with pytest.raises(ApiUnreachable):
        parse_feed(fixture_bytes("arxiv_external_entity.atom"))
    with pytest.raises(ApiUnreachable):
        parse_feed(fixture_bytes("arxiv_billion_laughs.atom"))


@pytest.mark.parametrize(
    "body", [fixture_bytes("arxiv_truncated.atom"), b"<html>Oops</html>", b""]
)
def test_malformed_answers_are_refused(paper_apis, body):
    paper_apis.expect_request("/api/query").respond_with_data(body, status=200)

    with pytest.raises(
        ApiUnreachable, match="arXiv answered something that is not its feed"
    ):
        lookup_paper("2201.03545")


def test_arxiv_that_does_not_answer_in_time_is_unreachable(paper_apis, settings):
    settings.PAPER_LOOKUP_TIMEOUT = 0.3
    release = threading.Event()

    def slow(request):
        release.wait(5)
        return Response(fixture_bytes("arxiv_convnext.atom"))

    paper_apis.expect_request("/api/query").respond_with_handler(slow)
    try:
        with pytest.raises(
            ApiUnreachable, match=r"^arXiv is unreachable \(no answer in time\)\.$"
        ):
            lookup_paper("2201.03545")
    finally:
        release.set()


# --- Crossref -------------------------------------------------------------------------
def test_crossref_fills_a_doi_papers_details_and_says_who_asks(paper_apis):
    answer_crossref(paper_apis, DOI, "crossref_convnext.json")

    details = lookup_paper(f"https://doi.org/{DOI}")

    assert details.title == "A ConvNet for the 2020s"
    assert details.authors[:2] == ["Zhuang Liu", "Hanzi Mao"]
    assert len(details.authors) == 6
    assert details.year == 2022
    assert details.venue == (
        "2022 IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)"
    )
    assert details.summary.startswith("The “Roaring 20s” of visual recognition")
    assert "jats" not in details.summary
    assert details.doi == DOI
    assert details.url == "https://ieeexplore.ieee.org/document/9879745/"
    assert details.code_url == "https://github.com/facebookresearch/ConvNeXt"
    (request, _) = paper_apis.log[0]
    assert "mailto:author@example.org" in request.headers["User-Agent"]


def test_a_doi_crossref_does_not_know_says_so(paper_apis):
    paper_apis.expect_request("/works/10.1234/nothing").respond_with_data(
        "Resource not found.", status=404
    )

    with pytest.raises(
        PaperNotFound, match=r"^Crossref has no work with the DOI 10\.1234/nothing\.$"
    ):
        lookup_paper("10.1234/nothing")


def test_crossref_asking_to_slow_down_is_said(paper_apis):
    paper_apis.expect_request(f"/works/{DOI}").respond_with_data(
        json.dumps({"status": "error", "message": "Too many requests"}),
        status=429,
        headers={"Retry-After": "7"},
    )

    with pytest.raises(
        ApiBusy, match=r"^Crossref asks us to slow down, try again in 7 s\.$"
    ):
        lookup_paper(DOI)


def test_crossref_that_cannot_be_reached_says_so(settings, paper_apis):
    paper_apis.stop()  # nothing listens there now

    with pytest.raises(ApiUnreachable, match=r"^Crossref is unreachable"):
        lookup_paper(DOI)
    paper_apis.start()


def test_a_crossref_answer_that_is_not_a_work_is_refused(paper_apis):
    paper_apis.expect_request(f"/works/{DOI}").respond_with_data("[1, 2", status=200)

    with pytest.raises(ApiUnreachable, match="not a work"):
        lookup_paper(DOI)


# --- The pace -------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_pace_kept():
    # The fake clock starts at the same moment in every test: no test may find a
    # turn an earlier one reserved.
    cache.clear()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_second_request_waits_for_the_interval(settings):
    clock = FakeClock()
    pace = Pace(
        "arxiv-test", label="arXiv", base_url="http://pace.test/1", interval=3.0,
        max_wait=10.0, clock=clock.time, sleep=clock.sleep,
    )  # fmt: skip

    first = pace.take_turn()
    clock.now += 1.0
    second = pace.take_turn()
    third = pace.take_turn()

    assert (first, second, third) == (0.0, 2.0, 3.0)
    assert clock.slept == [2.0, 3.0]


def test_paces_of_two_processes_share_the_interval(settings):
    # Two Pace objects stand for two processes: the next free moment is in the
    # cache, not in either of them.
    clock = FakeClock()
    made = {
        "label": "arXiv", "base_url": "http://pace.test/2", "interval": 3.0,
        "max_wait": 10.0, "clock": clock.time, "sleep": clock.sleep,
    }  # fmt: skip
    one, other = Pace("arxiv-test", **made), Pace("arxiv-test", **made)

    one.take_turn()

    assert other.take_turn() == 3.0


def test_a_turn_too_far_away_is_refused_and_reserves_nothing(settings):
    clock = FakeClock()
    pace = Pace(
        "arxiv-test", label="arXiv", base_url="http://pace.test/3", interval=3.0,
        max_wait=2.0, clock=clock.time, sleep=clock.sleep,
    )  # fmt: skip
    pace.take_turn()  # the next free moment is 3 s away

    with pytest.raises(
        ApiBusy, match=r"busy with other requests from this site, try again in 3 s"
    ):
        pace.take_turn()
    clock.now += 3.0
    assert pace.take_turn() == 0.0


def test_two_fetches_from_arxiv_are_spaced_by_the_interval(paper_apis, settings):
    settings.ARXIV_MIN_INTERVAL = 0.4
    arrived: list[float] = []

    def arxiv(request):
        arrived.append(time.monotonic())
        known = request.args["id_list"] == "2201.03545"
        fixture = "arxiv_convnext.atom" if known else "arxiv_no_results.atom"
        return Response(fixture_bytes(fixture), content_type=ATOM)

    paper_apis.expect_request(ARXIV_PATH).respond_with_handler(arxiv)

    lookup_paper("2201.03545")
    with pytest.raises(PaperNotFound):  # not cached: asks arXiv, after its turn
        lookup_paper("2301.99999")

    gap = arrived[1] - arrived[0]
    assert len(arrived) == 2
    # The pace spaces the requests' departures; their arrivals may differ by the
    # loopback's jitter (a few milliseconds), never by a whole interval.
    assert gap >= 0.35
