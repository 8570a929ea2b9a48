from django.db import models


class Heartbeat(models.Model):
    """The last time a Celery worker proved it was alive by running a task."""

    name = models.CharField(max_length=100, unique=True)
    beat_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"


class Publication(models.Model):
    """The publication's own settings: one row, edited in the admin."""

    name = models.CharField(max_length=200, default="Quire")
    description = models.TextField(blank=True)
    sender_name = models.CharField(max_length=200, blank=True)
    sender_email = models.EmailField(default="newsletter@localhost")
    postal_address = models.TextField(blank=True)
    welcome_email = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def load(cls) -> "Publication":
        """Return the publication's settings, creating them on first use."""
        publication, _ = cls.objects.get_or_create(pk=1)
        return publication
