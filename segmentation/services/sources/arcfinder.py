"""The arc finder (SpArcFiRe's method, ``evalcore.arcfinder``) as a generation source.

It reads the image's band data when it has some (a single band, or the r band of a g,r,z cube, converted
as SpArcFiRe converts a FITS band), otherwise the RGB luminance; see docs/arcfinder.md. It makes spiral
masks only (binary: any arm arc = arm, as the reference study used it); the bar slot is stored as
not asked, because the method's bar candidate is not a segmentation.
"""
from __future__ import annotations

import numpy as np

from evalcore.arcfinder.errors import ArcFinderError
from evalcore.arcfinder.params import CODE_VERSION, ArcFinderParams
from evalcore.arcfinder.pipeline import run_arcfinder
from segmentation.models import Producer
from segmentation.selectors.images import image_bands, image_rgb
from segmentation.services.masks import producer_get_or_create
from segmentation.services.sources.registry import MaskOutput

NAME = "arc finder (SpArcFiRe method)"


class Source:
    batch_size = 1

    def __init__(self, params: ArcFinderParams):
        self.params = params

    @staticmethod
    def producer(*, model_version=None, parameters: dict) -> Producer:
        params = ArcFinderParams.from_dict(parameters) if parameters else ArcFinderParams()
        return producer_get_or_create(
            kind=Producer.Kind.SPARCFIRE, name=NAME, version=CODE_VERSION, parameters=params.as_dict(),
            code_version=CODE_VERSION, description="Python implementation of SpArcFiRe's method (Davis & Hayes 2014)",
        )

    @classmethod
    def loaded(cls, run) -> Source:
        return cls(ArcFinderParams.from_dict(run.producer.parameters))

    def generate(self, images) -> list:
        out = []
        for image in images:
            try:
                bands = image_bands(image)
                pixels = bands if bands is not None else image_rgb(image)
                result = run_arcfinder(pixels, self.params)
                spiral = result.spiral_mask.astype(np.int64)
                out.append({
                    "spiral": MaskOutput("marked" if spiral.any() else "empty", spiral, 1, result.details()),
                    "bar": MaskOutput("not_asked", None, 1, {"reason": "the arc finder makes no bar masks"}),
                })
            except (ArcFinderError, ValueError, OSError) as exc:
                out.append(exc)
        return out
