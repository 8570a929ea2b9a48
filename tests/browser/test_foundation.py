import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def test_home_page_renders_in_chromium(page):
    page.goto("/")

    expect(page).to_have_title("Quire")
    expect(page.get_by_role("main")).to_be_visible()


def test_author_logs_in_to_the_admin(page):
    get_user_model().objects.create_superuser("author", "a@example.org", "s3cret-pass!")

    page.goto("/admin/")
    page.get_by_label("Username").fill("author")
    page.get_by_label("Password").fill("s3cret-pass!")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
