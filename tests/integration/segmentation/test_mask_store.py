import numpy as np
import pytest
from django.db import IntegrityError, transaction

from segmentation.models import Mask
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import MaskInput, mask_store, masks_store, producer_get_or_create


@pytest.fixture
def slot(db):
    galaxy, _ = galaxy_upsert(name="g1", defaults={"ra": 10.0, "dec": 5.0})
    rgb = np.zeros((16, 16, 3), np.uint8)
    image, _ = image_store(galaxy=galaxy, kind="gz3d_subject", rgb=rgb)
    producer = producer_get_or_create(kind="volunteers", name="GZ3D", version="v4_0_0")
    return {"galaxy": galaxy, "image": image, "structure": "spiral", "producer": producer}


def counts(value):
    a = np.zeros((16, 16), np.int64)
    a[4:8, 4:8] = value
    return a


def test_same_content_is_unchanged_new_content_replaces_and_keeps_history(slot):
    first = mask_store(**slot, state="marked", numerators=counts(3), denominator=15)
    again = mask_store(**slot, state="marked", numerators=counts(3), denominator=15)
    assert (first.status, again.status) == ("created", "unchanged")
    assert again.mask.pk == first.mask.pk
    newer = mask_store(**slot, state="marked", numerators=counts(5), denominator=15)
    assert newer.status == "replaced"
    assert newer.mask.supersedes_id == first.mask.pk
    assert Mask.objects.filter(is_current=True).count() == 1
    old = Mask.objects.get(pk=first.mask.pk)
    assert not old.is_current
    assert np.array_equal(old.fractions(), (counts(3) / 15).astype(np.float32))
    assert np.array_equal(newer.mask.fractions(), (counts(5) / 15).astype(np.float32))


def test_not_asked_and_empty_are_different_states(slot):
    not_asked = mask_store(**slot, state="not_asked")
    assert not_asked.mask.fractions() is None
    empty = mask_store(**slot, state="marked", numerators=counts(0), denominator=15)
    assert empty.status == "replaced" and empty.mask.state == Mask.State.EMPTY
    assert empty.mask.fractions().sum() == 0


def test_stored_mask_content_cannot_be_edited(slot):
    mask = mask_store(**slot, state="marked", numerators=counts(3), denominator=15).mask
    mask = Mask.objects.get(pk=mask.pk)
    mask.denominator = 14
    with pytest.raises(ValueError, match="immutable"):
        mask.save()


def test_database_allows_one_current_mask_per_slot(slot):
    mask_store(**slot, state="marked", numerators=counts(3), denominator=15)
    with pytest.raises(IntegrityError), transaction.atomic():
        Mask.objects.create(**slot, state="empty", width=16, height=16, content_hash="x")


def test_shape_mismatch_is_refused(slot):
    with pytest.raises(ValueError, match="does not match image"):
        mask_store(**slot, state="marked", numerators=np.ones((8, 8), int), denominator=1)


def test_many_masks_in_one_call_follow_the_same_rules(slot):
    """masks_store: created / unchanged / replaced like mask_store, in one transaction."""
    bar = {**slot, "structure": "bar"}
    other_galaxy, _ = galaxy_upsert(name="g2", defaults={"ra": 11.0, "dec": 5.0})
    other_image, _ = image_store(galaxy=other_galaxy, kind="gz3d_subject", rgb=np.ones((16, 16, 3), np.uint8))
    other = {**slot, "galaxy": other_galaxy, "image": other_image}
    first = mask_store(**slot, state="marked", numerators=counts(3), denominator=15)
    kept = mask_store(**bar, state="marked", numerators=counts(2), denominator=15)

    results = masks_store([
        MaskInput(**slot, state="marked", numerators=counts(4), denominator=15),  # new content
        MaskInput(**bar, state="marked", numerators=counts(2), denominator=15),  # same content
        MaskInput(**other, state="marked", numerators=counts(0), denominator=15),  # nothing marked
    ])

    assert [r.status for r in results] == ["replaced", "unchanged", "created"]
    assert results[0].mask.supersedes_id == first.mask.pk and not Mask.objects.get(pk=first.mask.pk).is_current
    assert results[1].mask.pk == kept.mask.pk
    assert results[2].mask.state == "empty"  # "marked" with no pixel becomes empty, as in mask_store
    assert Mask.objects.filter(is_current=True).count() == 3
    assert np.array_equal(Mask.objects.get(pk=results[0].mask.pk).fractions(), (counts(4) / 15).astype(np.float32))


def test_many_masks_are_all_or_nothing(slot):
    good = MaskInput(**slot, state="marked", numerators=counts(3), denominator=15)
    bad = MaskInput(**{**slot, "structure": "bar"}, state="marked", numerators=np.ones((8, 8), np.int64),
                    denominator=15)
    with pytest.raises(ValueError, match="does not match image"):
        masks_store([good, bad])
    with pytest.raises(ValueError, match="two masks for the same"):
        masks_store([good, good])
    assert not Mask.objects.exists()
    assert masks_store([]) == []


def test_counts_are_kept_when_a_mask_is_stored_and_filled_once_for_older_masks(db, admin_client):
    from django.urls import reverse

    from tests.factories import ImageFactory, MaskFactory

    image = ImageFactory(size=16)
    numerators = np.zeros((16, 16), np.int64)
    numerators[2:5, 3:7] = 2
    numerators[8, 8] = 5
    mask = MaskFactory(image=image, numerators=numerators, denominator=5)
    assert (mask.marked_pixels, mask.peak_numerator) == (13, 5)
    batch = masks_store([MaskInput(galaxy=image.galaxy, image=image, structure="bar", producer=mask.producer,
                                   state="marked", numerators=numerators[::-1].copy(), denominator=5)])
    assert (batch[0].mask.marked_pixels, batch[0].mask.peak_numerator) == (13, 5)
    # a mask stored before the counts were kept: the galaxy page counts it once and keeps the counts
    Mask.objects.filter(pk=mask.pk).update(marked_pixels=None, peak_numerator=None)
    page = admin_client.get(reverse("admin:segmentation_galaxy_change", args=[image.galaxy.pk]))
    assert page.status_code == 200
    entries = {e.mask.pk: e for e in page.context["viewer"]["entries"]}
    assert (entries[mask.pk].marked_pixels, entries[mask.pk].peak) == (13, "5/5")
    assert "peak 5/5 · 13 px marked" in page.content.decode()
    mask.refresh_from_db()
    assert (mask.marked_pixels, mask.peak_numerator) == (13, 5)
