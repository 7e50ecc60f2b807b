"""The one exception the arc finder raises for inputs it cannot process."""


class ArcFinderError(ValueError):
    """Input the arc finder refuses, with a message that says which and why (blank, all-NaN, too small...)."""
