"""A synthetic galaxy survey with known ground truth: population, renderer, simulated volunteers, files (no Django)."""
