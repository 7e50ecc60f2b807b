"""Ratings app: blinded expert evaluation of masks (studies, raters, answers, statistics)."""
