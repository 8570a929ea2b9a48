"""arXiv's pace holds across processes: two processes that ask arXiv at the same
moment reach it an interval apart (the next free moment is in the shared cache:
files in the embedded default, Redis in the services leg)."""

import os
import subprocess
import sys
import threading
import time

from django.conf import settings
from werkzeug import Response

from tests.support.paper_apis import ARXIV_PATH, ATOM, fixture_bytes

INTERVAL = 0.6
ASK = """
import django, sys
django.setup()
from issues.paper_metadata import lookup_paper
sys.stdin.readline()  # both processes start asking together
print(lookup_paper(sys.argv[1]).title)
"""


def test_two_processes_asking_together_keep_one_interval_between_them(paper_apis):
    arrived: list[float] = []
    lock = threading.Lock()

    def arxiv(request):
        with lock:
            arrived.append(time.monotonic())
        convnext = request.args["id_list"] == "2201.03545"
        fixture = "arxiv_convnext.atom" if convnext else "arxiv_versions_batch.atom"
        return Response(fixture_bytes(fixture), content_type=ATOM)

    paper_apis.expect_request(ARXIV_PATH).respond_with_handler(arxiv)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "newsletter.settings",
        "ARXIV_API_URL": paper_apis.url_for(ARXIV_PATH),
        "ARXIV_MIN_INTERVAL": str(INTERVAL),
        "QUIRE_VAR_DIR": str(settings.VAR_DIR),
    }
    # Two papers, so that neither answer comes from the cache the other filled.
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", ASK, arxiv_id],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=settings.BASE_DIR,
        )  # fmt: skip
        for arxiv_id in ("2201.03545", "1706.03762")
    ]
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    outputs = [process.communicate(timeout=60)[0] for process in processes]

    assert [process.returncode for process in processes] == [0, 0]
    assert outputs == ["A ConvNet for the 2020s\n", "Attention Is All You Need\n"]
    gap = abs(arrived[1] - arrived[0])
    assert len(arrived) == 2
    # Departures are an interval apart; arrivals differ by the loopback's jitter.
    assert gap >= INTERVAL - 0.05
