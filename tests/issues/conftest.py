import pytest
from django.contrib.auth import get_user_model

# arXiv and Crossref answered by a local server, for the papers' tests.
from tests.support.paper_apis import paper_apis  # noqa: F401


@pytest.fixture
def staff_user(editor):
    """A staff member with the author's rights over issues and papers."""
    return editor


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(
        "author", "author@example.org", "s3cret-pass!"
    )


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client
