from django.apps import AppConfig


class SegmentationConfig(AppConfig):
    name = "segmentation"
    verbose_name = "Segmentation"

    def ready(self):
        # The admin of background runs and model versions lives in modules beside admin.py.
        from segmentation import admin_models, admin_runs  # noqa: F401
