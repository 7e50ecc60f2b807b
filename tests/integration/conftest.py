"""Integration tier: the database, Redis, files and commands (fixtures in tests/django_support.py)."""
from django_support import *  # noqa: F403
