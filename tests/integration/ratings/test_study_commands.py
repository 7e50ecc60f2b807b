"""Studies from the command line on a synthetic survey: ``create_study``, ``open_study`` and ``invite`` end to
end (real survey files, real importers, the arc finder run by ``generate_masks``), and their refusals: clear
messages as CommandError (printed without a traceback, exit status 1), nothing half made."""
from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from evalcore.synthetic import survey
from ratings.models import Assignment, Invitation, Item, Study
from segmentation.models import Galaxy, Producer
from segmentation.services.imports.synthetic import import_synthetic_survey


@pytest.fixture(scope="module")
def survey_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study-survey")
    survey.make_survey(survey.SurveySettings(n=8, seed=3, size=64, out=out), workers=1)
    return out


@pytest.fixture
def sources(db, survey_dir):
    """The imported survey with arc-finder masks: (volunteers' producer, arc finder's producer)."""
    import_synthetic_survey(directory=survey_dir, progress=False)
    call_command("generate_masks", "--source", "sparcfire", "--no-progress", stdout=io.StringIO())
    return Producer.objects.get(kind="volunteers"), Producer.objects.get(kind="sparcfire")


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_create_open_and_invite_end_to_end(sources, client, settings):
    settings.EVALSITE_BASE_URL = "https://rate.example.org/"
    volunteers, arcs = sources
    out = run("create_study", "Arms 1", "--question", "Which source marks spiral arms best?",
              "--structures", "spiral", "--sources", volunteers.name, f"{arcs.name} {arcs.version}",
              "--sample", "4", "--seed", "2", "--raters-per-item", "2", "--planned-raters", "3")
    study = Study.objects.get(name="Arms 1")
    assert study.state == "draft" and set(study.sources.all()) == {volunteers, arcs}
    assert study.items.filter(kind=Item.Kind.REAL).count() == 4 == study.planned_items
    assert "items: 4 chosen from 4 galaxies, 4 planned" in out and "before opening" not in out
    assert study.selection["mode"] == "sample" and study.selection["asked"] == 4

    out = run("open_study", "Arms 1")
    study.refresh_from_db()
    assert study.state == "open" and "is open" in out
    assert Assignment.objects.filter(study=study).count() >= 4 * 2
    assert study.log.filter(action="opened").exists()

    lines = run("invite", str(study.pk), "--n", "3").split()
    assert len(lines) == 3 and len(set(lines)) == 3
    tokens = set(Invitation.objects.filter(study=study).values_list("token", flat=True))
    for url in lines:
        assert url.startswith("https://rate.example.org/rate/join/")
        assert url.rstrip("/").rsplit("/", 1)[1] in tokens
        page = client.get(url.removeprefix("https://rate.example.org"))
        assert page.status_code == 200 and b"password" in page.content.lower()


def test_a_shrunken_sample_must_be_accepted_before_opening(sources):
    volunteers, arcs = sources
    out = run("create_study", "Arms 2", "--question", "q?", "--structures", "spiral",
              "--sources", volunteers.name, arcs.name, "--sample", "50", "--raters-per-item", "1")
    study = Study.objects.get(name="Arms 2")
    assert "items: 8 chosen from 8 galaxies, 50 planned (the sample asked for 50 galaxies, 8 available)" in out
    assert "a shortfall of 42" in out and "--accept-shortfall" in out
    with pytest.raises(CommandError, match="8 items where 50 are planned"):
        run("open_study", "Arms 2")
    assert Study.objects.get(pk=study.pk).state == "draft"
    out = run("open_study", "Arms 2", "--accept-shortfall")
    study.refresh_from_db()
    assert study.state == "open" and study.shortfall_acknowledged == 8
    assert study.log.filter(action="shortfall accepted").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--sources", "nobody", "sparcfire"], "no source called 'nobody'"),
    (["--sources", "sparcfire"], "a study compares 2 or 3 sources, this one has 1"),
    (["--sources", "TRUTH", "sparcfire"], "the ground truth is a rated source only in a calibration study"),
    (["--sources", "VOL", "sparcfire", "--names", "no such galaxy"], "no galaxy named no such galaxy"),
    (["--sources", "VOL", "sparcfire", "--sample", "0"], "--sample must be at least 1"),
])
def test_bad_input_is_refused_in_words_and_makes_no_study(sources, args, message):
    volunteers, arcs = sources
    truth = Producer.objects.get(kind="truth")
    args = [{"VOL": volunteers.name, "sparcfire": arcs.name, "TRUTH": truth.name}.get(a, a) for a in args]
    with pytest.raises(CommandError, match=message):
        run("create_study", "Bad", "--question", "q?", "--structures", "spiral", *args)
    assert not Study.objects.filter(name="Bad").exists()


def test_a_calibration_study_rates_the_truth(sources):
    volunteers, _ = sources
    truth = Producer.objects.get(kind="truth")
    run("create_study", "Calibration", "--question", "q?", "--structures", "spiral", "--calibration",
        "--sources", volunteers.name, truth.name, "--names", *sorted(
            Galaxy.objects.values_list("name", flat=True))[:3])
    study = Study.objects.get(name="Calibration")
    assert study.calibration and truth in study.sources.all() and study.items.count() == 3


def test_unknown_study_and_bad_numbers(sources):
    with pytest.raises(CommandError, match="no study called 'nope'"):
        run("open_study", "nope")
    with pytest.raises(CommandError, match="no study called 'nope'"):
        run("invite", "nope", "--n", "2")
    volunteers, arcs = sources
    run("create_study", "Arms 3", "--question", "q?", "--structures", "spiral", "--sources", volunteers.name,
        arcs.name, "--sample", "2")
    with pytest.raises(CommandError, match="between 1 and 1000"):
        run("invite", "Arms 3", "--n", "0")
    with pytest.raises(CommandError, match="only a draft study can be opened"):
        run("open_study", "Arms 3", "--accept-shortfall")
        run("open_study", "Arms 3")
