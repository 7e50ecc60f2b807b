"""Staff-only rendering endpoints used by the admin's galaxy page (mounted under /segmentation/)."""
from django.urls import path

from segmentation import views

app_name = "segmentation"

urlpatterns = [
    path("image/<int:pk>.png", views.image_png, name="image-png"),
    path("mask/<int:pk>.png", views.mask_png, name="mask-png"),
]
