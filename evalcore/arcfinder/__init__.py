"""A fast Python implementation of the SpArcFiRe arc-finding method (Davis & Hayes 2014, ApJ 790, 87).

No Django here. The one entry point most callers need is :func:`run_arcfinder`; see ``docs/arcfinder.md``.
"""
from evalcore.arcfinder.errors import ArcFinderError
from evalcore.arcfinder.params import CODE_VERSION, STUDY_PARAMS, ArcFinderParams
from evalcore.arcfinder.pipeline import ArcFinderResult, run_arcfinder

__all__ = ["ArcFinderError", "ArcFinderParams", "ArcFinderResult", "CODE_VERSION", "STUDY_PARAMS", "run_arcfinder"]
