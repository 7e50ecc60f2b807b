"""Test data, made through the real services so every model invariant holds (factory-boy).

People: ``UserFactory`` (password ``PASSWORD``), ``StaffFactory``, ``AdminFactory``; the named people
of the suite (admin, viewer, rater_a, rater_b, stranger) are fixtures in tests/django_support.py.
Data: ``GalaxyFactory``, ``ImageFactory``, ``ProducerFactory``, ``MaskFactory`` call
``segmentation.services`` (galaxy_upsert, image_store, producer_get_or_create, mask_store), so a test
gets what an importer would have stored. Bigger builders: ``tests.factories.studies`` (rating studies)
and ``tests.factories.measurements`` (images with a known pixel scale, bars and spirals at known places).
"""
from __future__ import annotations

import factory
import numpy as np
from django.contrib.auth import get_user_model

from segmentation.models import Galaxy, Image, Mask, Producer
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create

PASSWORD = "test-pass-1234"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        if create:
            instance.save()


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True


class GalaxyFactory(factory.Factory):
    """A galaxy through ``galaxy_upsert``; any other keyword becomes one of its fields."""
    class Meta:
        model = Galaxy

    name = factory.Sequence(lambda n: f"G{n:05d}")
    ra = factory.Sequence(lambda n: 10.0 + (n % 300))
    dec = factory.Sequence(lambda n: -5.0 + (n % 100) / 10)

    @classmethod
    def _create(cls, model_class, name, **fields):
        return galaxy_upsert(name=name, defaults=fields)[0]


class ImageFactory(factory.Factory):
    """An image of a galaxy through ``image_store``; ``rgb`` defaults to a small grey disk."""
    class Meta:
        model = Image

    galaxy = factory.SubFactory(GalaxyFactory)
    kind = "survey_cutout"
    size = 32

    @classmethod
    def _create(cls, model_class, galaxy, kind, size, rgb=None, **fields):
        if rgb is None:
            y, x = np.indices((size, size)) - (size - 1) / 2
            light = (220 * np.exp(-(x ** 2 + y ** 2) / (2 * (size / 6) ** 2))).astype(np.uint8)
            rgb = np.repeat(light[..., None], 3, axis=2)
        return image_store(galaxy=galaxy, kind=kind, rgb=rgb, **fields)[0]


class ProducerFactory(factory.Factory):
    """A producer through ``producer_get_or_create`` (same kind, name, version, parameters: same row)."""
    class Meta:
        model = Producer

    kind = "volunteers"
    name = factory.LazyAttribute(lambda o: f"test {o.kind}")
    version = "1"

    @classmethod
    def _create(cls, model_class, **fields):
        return producer_get_or_create(**fields)


class MaskFactory(factory.Factory):
    """A current mask through ``mask_store``; ``numerators`` default to a square in the image's centre."""
    class Meta:
        model = Mask

    image = factory.SubFactory(ImageFactory)
    producer = factory.SubFactory(ProducerFactory)
    structure = "spiral"
    state = "marked"
    denominator = 1

    @classmethod
    def _create(cls, model_class, image, numerators=None, **fields):
        if numerators is None and fields["state"] == "marked":
            numerators = np.zeros((image.height, image.width), np.int64)
            numerators[image.height // 4: -image.height // 4, image.width // 4: -image.width // 4] = 1
        return mask_store(galaxy=image.galaxy, image=image, numerators=numerators, **fields).mask
