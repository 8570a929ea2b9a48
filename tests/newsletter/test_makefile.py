"""The Makefile: `make help` is the list of what a developer can run."""

import re
import subprocess

from django.conf import settings


def test_make_help_lists_every_target():
    makefile = (settings.BASE_DIR / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*?)(?<!\\)$", makefile, re.M | re.S)
    targets = set(phony.group(1).replace("\\\n", " ").split())

    result = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    listed = set(re.findall(r"^make ([\w-]+)", result.stdout, re.M))

    assert "test-services" in targets
    assert listed == targets
