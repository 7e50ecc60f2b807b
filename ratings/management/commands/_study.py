"""Shared by the study commands (a module starting with "_" is not a command)."""
from django.core.management.base import CommandError

from ratings.models import Study


def study_named(text: str) -> Study:
    """A study by its exact name, or by its number."""
    study = Study.objects.filter(name=text).first()
    if study is None and text.isdigit():
        study = Study.objects.filter(pk=int(text)).first()
    if study is None:
        known = ", ".join(repr(n) for n in Study.objects.order_by("name").values_list("name", flat=True)[:10])
        raise CommandError(f"no study called {text!r}" + (f" (studies: {known})" if known else " (there is none yet)"))
    return study


def plan_line(plan: dict) -> str:
    planned = plan["planned"] if plan["planned"] is not None else "(not set)"
    line = f"items: {plan['actual']} chosen from {plan['galaxies']} galaxies, {planned} planned"
    if plan.get("asked_galaxies"):
        line += f" (the sample asked for {plan['asked_galaxies']} galaxies, {plan['available_galaxies']} available)"
    if plan["shortfall"]:
        line += f"; a shortfall of {plan['shortfall']}" + (", accepted" if plan["acknowledged"] else "")
    return line
