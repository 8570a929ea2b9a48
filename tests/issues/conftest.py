import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission


@pytest.fixture
def staff_user(db):
    """A staff member with the author's rights over issues and papers."""
    user = get_user_model().objects.create_user(
        "editor", "editor@example.org", "s3cret-pass!", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="issues",
            codename__in=[
                f"{action}_{model}"
                for action in ("view", "add", "change")
                for model in ("issue", "paper")
            ],
        )
    )
    return user


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(
        "author", "author@example.org", "s3cret-pass!"
    )


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture(autouse=True)
def _empty_page_cache():
    from issues.pagecache import pages

    pages.clear()
    yield
    pages.clear()
