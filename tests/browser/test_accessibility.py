"""The issue pages pass axe-core with no violation, in the light and dark themes.

axe.min.js comes with the axe-playwright-python package (the dev extras) and is
injected into the page under test; nothing of it is served by Quire.
"""

from pathlib import Path

import pytest

from issues.demo import load_demo

pytestmark = pytest.mark.django_db(transaction=True)

# Each demo issue, and what it holds that the others do not.
ISSUES = {
    "top-10-papers-of-2022": ".citation .rank",  # the ranked list
    "convolutions-strike-back": "pre.highlight",  # highlighted code
    "scaling-laws-revisited": ".paywall-box",  # the paywall box
}
THEMES = {
    # What the system asks for, and what the reader chose with the toggle (if any).
    "light": ("light", None),
    "dark-system": ("dark", None),
    "dark-chosen": ("light", "dark"),
}


def axe_violations(page) -> list[str]:
    import axe_playwright_python

    script = Path(axe_playwright_python.__file__).with_name("axe.min.js")
    page.add_script_tag(path=str(script))
    return page.evaluate(
        """async () => (await axe.run(document)).violations.map(v =>
            `${v.id} (${v.impact}): ${v.help}\\n` + v.nodes.map(n =>
                `  ${n.target.join(" ")}: ${n.failureSummary}`).join("\\n"))"""
    )


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("slug", ISSUES)
def test_the_issue_page_has_no_accessibility_violation(
    browser, live_server, slug, theme
):
    load_demo()
    system, chosen = THEMES[theme]
    # axe-core is injected as an inline script, which the site's policy forbids.
    context = browser.new_context(
        base_url=live_server.url, color_scheme=system, bypass_csp=True
    )
    if chosen:
        context.add_init_script(f"localStorage.setItem('quire-theme', '{chosen}')")
    page = context.new_page()
    try:
        page.goto(f"/issues/{slug}/")
        # The theme in force: the page's background is dark or light.
        dark = page.evaluate(
            """() => getComputedStyle(document.body).backgroundColor
                .match(/\\d+/g).slice(0, 3).reduce((sum, c) => sum + +c, 0) < 200"""
        )
        assert dark is ((chosen or system) == "dark")
        assert page.locator(ISSUES[slug]).count() > 0

        assert axe_violations(page) == []
    finally:
        context.close()
