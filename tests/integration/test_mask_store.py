import numpy as np
import pytest
from django.db import IntegrityError, transaction

from segmentation import services
from segmentation.models import Mask


@pytest.fixture
def slot(db):
    galaxy, _ = services.galaxy_upsert(name="g1", defaults={"ra": 10.0, "dec": 5.0})
    rgb = np.zeros((16, 16, 3), np.uint8)
    image, _ = services.image_store(galaxy=galaxy, kind="gz3d_subject", rgb=rgb)
    producer = services.producer_get_or_create(kind="volunteers", name="GZ3D", version="v4_0_0")
    return {"galaxy": galaxy, "image": image, "structure": "spiral", "producer": producer}


def counts(value):
    a = np.zeros((16, 16), np.int64)
    a[4:8, 4:8] = value
    return a


def test_same_content_is_unchanged_new_content_replaces_and_keeps_history(slot):
    first = services.mask_store(**slot, state="marked", numerators=counts(3), denominator=15)
    again = services.mask_store(**slot, state="marked", numerators=counts(3), denominator=15)
    assert (first.status, again.status) == ("created", "unchanged")
    assert again.mask.pk == first.mask.pk
    newer = services.mask_store(**slot, state="marked", numerators=counts(5), denominator=15)
    assert newer.status == "replaced"
    assert newer.mask.supersedes_id == first.mask.pk
    assert Mask.objects.filter(is_current=True).count() == 1
    old = Mask.objects.get(pk=first.mask.pk)
    assert not old.is_current
    assert np.array_equal(old.fractions(), (counts(3) / 15).astype(np.float32))
    assert np.array_equal(newer.mask.fractions(), (counts(5) / 15).astype(np.float32))


def test_not_asked_and_empty_are_different_states(slot):
    not_asked = services.mask_store(**slot, state="not_asked")
    assert not_asked.mask.fractions() is None
    empty = services.mask_store(**slot, state="marked", numerators=counts(0), denominator=15)
    assert empty.status == "replaced" and empty.mask.state == Mask.State.EMPTY
    assert empty.mask.fractions().sum() == 0


def test_stored_mask_content_cannot_be_edited(slot):
    mask = services.mask_store(**slot, state="marked", numerators=counts(3), denominator=15).mask
    mask = Mask.objects.get(pk=mask.pk)
    mask.denominator = 14
    with pytest.raises(ValueError, match="immutable"):
        mask.save()


def test_database_allows_one_current_mask_per_slot(slot):
    services.mask_store(**slot, state="marked", numerators=counts(3), denominator=15)
    with pytest.raises(IntegrityError), transaction.atomic():
        Mask.objects.create(**slot, state="empty", width=16, height=16, content_hash="x")


def test_shape_mismatch_is_refused(slot):
    with pytest.raises(ValueError, match="does not match image"):
        services.mask_store(**slot, state="marked", numerators=np.ones((8, 8), int), denominator=1)
