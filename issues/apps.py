from django.apps import AppConfig
from django.conf import settings
from PIL import Image


class IssuesConfig(AppConfig):
    name = "issues"

    def ready(self) -> None:
        # Pillow refuses, from its header, an image over this many pixels: one
        # that decodes to gigabytes from a small file never gets decoded, by
        # an upload or by anything else in the process.
        Image.MAX_IMAGE_PIXELS = settings.QUIRE_IMAGE_MAX_PIXELS
        # Imported here, once the models are loaded: every change to what reader
        # pages show raises the content version the page cache keeps pages by.
        from . import receivers

        receivers.connect()
        # A reader's saved papers go with the rest of what is stored about them:
        # subscribers sits below issues and cannot call it, so it asks by signal.
        from subscribers.signals import subscriber_data_exporting, subscriber_erasing

        from . import library  # models loaded by now, as for receivers above

        subscriber_data_exporting.connect(
            library.export_saved_papers, dispatch_uid="issues-library-export"
        )
        subscriber_erasing.connect(
            library.erase_saved_papers, dispatch_uid="issues-library-erase"
        )
