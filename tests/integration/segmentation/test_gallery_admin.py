"""The synthetic survey's gallery, viewable in the admin."""
import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from segmentation.models import ImportBatch


@pytest.mark.django_db
def test_gallery_of_an_imported_synthetic_survey(client, django_user_model, tmp_path):
    call_command("make_synthetic", n=4, seed=5, size=64, out=str(tmp_path / "s"), import_=True, no_progress=True)
    batch = ImportBatch.objects.get(kind="synthetic")
    client.force_login(django_user_model.objects.create_user("g", password="pw", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:segmentation_importbatch_change", args=[batch.pk]))
    url = reverse("admin:segmentation_importbatch_gallery", args=[batch.pk])
    assert url in page.content.decode()
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as img:
        assert img.width > 400 and img.height > 200
    client.logout()
    assert client.get(url).status_code == 302
