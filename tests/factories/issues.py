import factory
from django.utils import timezone

from issues import services
from issues.models import Citation, Issue, Paper, Tag
from newsletter.models import Newsletter


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Tag {n}")
    slug = factory.Sequence(lambda n: f"tag-{n}")


class PaperFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Paper

    title = factory.Sequence(lambda n: f"A Paper About Things {n}")
    slug = factory.Sequence(lambda n: f"paper-{n}")
    authors = factory.LazyFunction(lambda: ["Ada Lovelace", "Alan Turing"])
    year = 2022
    arxiv_id = factory.Sequence(lambda n: f"2201.{n:05d}")


class IssueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Issue
        # Tags are set through the relation; the issue needs no second save.
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Issue {n}")
    slug = factory.Sequence(lambda n: f"issue-{n}")
    body = "Hello **readers**."
    status = Issue.Status.DRAFT

    class Params:
        published = factory.Trait(
            status=Issue.Status.PUBLISHED,
            published_at=factory.LazyFunction(timezone.now),
        )
        scheduled = factory.Trait(
            status=Issue.Status.SCHEDULED,
            publish_at=factory.LazyFunction(
                lambda: timezone.now() + timezone.timedelta(days=1)
            ),
        )
        paid_only = factory.Trait(access=Issue.Access.PAID)

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.tags.set(extracted)

    @factory.post_generation
    def citations(self, create, extracted, **kwargs):
        # As the admin and the commands do once an issue is saved.
        if create:
            services.record_citations(issue=self)


class CitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Citation

    issue = factory.SubFactory(IssueFactory)
    paper = factory.SubFactory(PaperFactory)
    position = factory.Sequence(lambda n: n)


def issue_admin_form(**overrides) -> dict:
    """Return the issue admin's add form as a browser posts it, with overrides."""
    data = {
        "title": "Diffusion goes latent",
        "slug": "diffusion-goes-latent",
        "subtitle": "",
        "body": "Hello",
        "status": "draft",
        "access": "free",
        "newsletter": str(Newsletter.default().pk),
        "audience": "all",
        "segment": "",
        "citations-TOTAL_FORMS": "0",
        "citations-INITIAL_FORMS": "0",
        "citations-MIN_NUM_FORMS": "0",
        "citations-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data
