"""Signing in to the admin in Chromium, for the browser tests of admin pages."""

from playwright.sync_api import expect


def admin_session(browser, live_server, scheme: str, username: str, password: str):
    """Return a new context and page signed in as username, in the colour scheme.

    axe-core is injected as an inline script, which the admin's policy forbids, so
    the policy is bypassed here; tests/browser/test_csp.py opens admin pages under
    the policy.
    """
    context = browser.new_context(
        base_url=live_server.url,
        color_scheme=scheme,
        bypass_csp=True,
        viewport={"width": 1280, "height": 900},
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    return context, page
