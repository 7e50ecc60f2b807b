from django.apps import AppConfig


class SegmentationConfig(AppConfig):
    name = "segmentation"
    verbose_name = "Segmentation"

    def ready(self):
        # The admin of background runs lives in its own module beside admin.py.
        from segmentation import admin_runs  # noqa: F401
