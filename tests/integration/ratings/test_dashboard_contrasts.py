"""The dashboard and the summary CSV of a closed study show each position's paired effect and report a
separated source as not estimable instead of a number."""
from __future__ import annotations

import io
import random

from evalcore.study.stats import read_summary_csv
from ratings.models import Assignment, Candidate
from ratings.services import results
from ratings.services.answers import PanelAnswer, answer_submit
from ratings.services.raters import rater_join
from ratings.services.studies import study_close, study_open
from tests.factories.studies import dashboard_study, make_user

# the model is always rated "Perfectly": constant levels, its log odds have no finite estimate
LEVELS = {"model": (3,), "volunteers": (1, 2), "sparcfire": (0, 1)}


def answer_all(study, seed: int = 5) -> None:
    rng = random.Random(seed)
    study_open(study=study)
    for i in range(6):
        rater = rater_join(study=study, user=make_user(f"sep-rater{i}"))
        for a in Assignment.objects.filter(rater=rater).order_by("position"):
            kinds = dict(Candidate.objects.filter(pk__in=a.panel_order).values_list("pk", "producer__kind"))
            qualities = [rng.choice(LEVELS[kinds[c]]) for c in a.panel_order]
            answers = [PanelAnswer(j, 1 + sum(o > q for o in qualities), q) for j, q in enumerate(qualities)]
            answer_submit(assignment=a, answers=answers, seconds=10)
    study_close(study=study)


def test_dashboard_and_summary_show_position_contrasts_and_separation(client, db):
    study = dashboard_study(name="separated", n_galaxies=8)
    answer_all(study)
    client.force_login(make_user("boss", superuser=True))
    html = client.get(f"/staff/ratings/{study.pk}/").content.decode()
    position = html.split('id="position"')[1]
    assert "position_contrast" in position and "ranked_first" in position and "quality_level" in position
    differences = html.split('id="differences"')[1].split('id="reliability"')[0]
    assert "not estimable: separation" in differences and "every answer of the reference (model)" in differences
    tables = read_summary_csv(io.StringIO("".join(results.export_lines(study, "summary"))))
    ordinal = tables["ordinal_model"]
    assert ordinal["note"].str.startswith("not estimable: separation").all()
    assert "log_odds" not in ordinal.columns or ordinal["log_odds"].isna().all()
    contrast = tables["position_contrast"]
    assert set(contrast["panel_position"]) == {1, 2, 3} and contrast["effect"].notna().all()
    assert ((contrast["ci_low"] <= contrast["effect"]) & (contrast["effect"] <= contrast["ci_high"])).all()
