"""The matched display and the machine blinding audit on a three-source, two-structure study of 40 galaxies.

- The product's audit (``audit_blinding``, the pre-opening check) finds the default display blind and the
  raw soft display leaking (accuracy above 0.8).
- An independent probe fetches every panel a rater is served through the rater's own pages (test client,
  logged in as each rater) and checks, without the audit's code: one chunk layout, one colour set for
  every source, identical HTML fragments, and a simple classifier of its own at chance.
- Opening a study whose presentation audit is above chance needs a reason, which is logged.
"""
from __future__ import annotations

import io
import re
import struct
from collections import Counter

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from PIL import Image

from evalcore.pixels import matched
from ratings.models import Assignment, Candidate, PanelImage, Study, StudyLog
from ratings.services import panels
from ratings.services.raters import rater_join
from ratings.services.studies import StudyError, study_check, study_open, study_update
from tests.factories.blinding_study import MODEL_LEVELS, build_blinding_study


def _chunks(data: bytes) -> tuple[str, ...]:
    out, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        out.append(data[i + 4:i + 8].decode("ascii"))
        i += 12 + length
    return tuple(out)


def probe_features(mask_png: bytes, layer_png: bytes, fragment: str) -> list[float]:
    """The probe's own presentation features (Pillow and numpy only)."""
    feats = []
    for data in (mask_png, layer_png):
        img = Image.open(io.BytesIO(data))
        px = np.asarray(img)
        drawn = px[..., 3] > 0 if px.shape[-1] == 4 else px.any(axis=-1)
        colours = Counter(map(tuple, px[drawn].reshape(-1, px.shape[-1]))) if drawn.any() else Counter()
        total = sum(colours.values()) or 1
        luma = (px[drawn][:, :3] @ [0.2126, 0.7152, 0.0722]) if drawn.any() else np.zeros(1)
        feats += [len(_chunks(data)), img.mode == "RGBA", len(colours) or 1,
                  (max(colours.values()) / total) if colours else 1.0, float((luma < 96).mean()) if drawn.any() else 0]
    text = re.sub(r'<p class="nothing-marked">.*?</p>', "", fragment)
    text = re.sub(r"[\w-]{20,}|\d+", "T", text)
    return feats + [len(text)]


def served_panels(study: Study) -> list[dict]:
    """Log in as each rater, open every item page and fetch its panel pictures, as a browser would."""
    rows = []
    users = get_user_model()
    for slot in range(study.planned_raters):
        user = users.objects.create_user(f"probe{slot}", password="pw-probe-123456")
        rater = rater_join(study=study, user=user)
        client = Client()
        client.force_login(user)
        for a in Assignment.objects.filter(rater=rater).order_by("position"):
            html = client.get(f"/rate/a/{a.token}/").content.decode()
            fragments = re.findall(r'<fieldset class="panel".*?</fieldset>', html, re.S)
            assert len(fragments) == len(a.panel_order)
            kinds = dict(Candidate.objects.filter(pk__in=a.panel_order).values_list("pk", "producer__kind"))
            for i, cid in enumerate(a.panel_order):
                mask = client.get(f"/rate/a/{a.token}/p{i}-mask.png")
                layer = client.get(f"/rate/a/{a.token}/p{i}-layer.png")
                assert mask.status_code == layer.status_code == 200
                rows.append({"kind": kinds[cid], "galaxy": a.item.galaxy_id, "mask": mask.content,
                             "layer": layer.content, "fragment": fragments[i], "structure": a.item.structure})
    return rows


def probe_accuracy(rows: list[dict]) -> tuple[float, float, float, float]:
    """(accuracy, 95% low, high, chance) of a logistic regression on the probe's features, galaxies grouped."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.array([probe_features(r["mask"], r["layer"], r["fragment"]) for r in rows], float)
    y = np.array([r["kind"] for r in rows])
    g = np.array([r["galaxy"] for r in rows])
    pred = np.empty(len(y), dtype=object)
    for train, test in GroupKFold(5).split(X, y, g):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        model.fit(X[train], y[train])
        pred[test] = model.predict(X[test])
    correct = (pred == y).astype(float)
    keys, inv = np.unique(g, return_inverse=True)
    sums, counts = np.bincount(inv, correct), np.bincount(inv).astype(float)
    pick = np.random.default_rng(5).integers(0, len(keys), (2000, len(keys)))
    boot = sums[pick].sum(1) / counts[pick].sum(1)
    chance = max(Counter(y).values()) / len(y)
    return correct.mean(), np.quantile(boot, 0.025), np.quantile(boot, 0.975), chance


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 40 galaxies, 200 panels audited and fetched through the raters' pages
def test_default_display_is_blind_to_the_audit_and_to_an_independent_probe(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    study = build_blinding_study(40)
    assert study.display == "matched" and study.state == Study.State.OPEN
    # the pre-registration records each source's own level, and the frozen audit
    study.refresh_from_db()
    levels = {v["kind"]: {s: v[s]["level"] for s in ("spiral", "bar")} for v in study.display_levels.values()}
    assert levels == {"model": MODEL_LEVELS, "volunteers": {"spiral": 0.5, "bar": 0.5},
                      "sparcfire": {"spiral": 0.5, "bar": 0.5}}
    frozen = study.blinding_audit
    assert frozen["frozen"] and frozen["audited"] and frozen["panels"] == 40 * 5  # never-asked bars left out
    p = frozen["presentation"]
    assert p["low"] <= p["chance"] and not p["above_chance"], p

    # the independent probe, through the rater's pages
    rows = served_panels(study)
    assert len(rows) == 40 * 5  # the arc finder's never-asked bars are no candidates
    assert not [r for r in rows if r["kind"] == "sparcfire" and r["structure"] == "bar"]
    colours: dict[str, set] = {}
    chunk_layouts, fragments = set(), {}
    for r in rows:
        for variant in ("mask", "layer"):
            px = np.asarray(Image.open(io.BytesIO(r[variant])))
            found = set(map(tuple, px.reshape(-1, px.shape[-1])))
            colours.setdefault(r["kind"], set()).update((variant, c) for c in found)
            chunk_layouts.add((variant, _chunks(r[variant]), r[variant][16:29]))  # chunk list and IHDR fields
        fragment = re.sub(r'<p class="nothing-marked">.*?</p>', "", r["fragment"])
        fragments.setdefault(r["structure"], set()).add(  # the rank buttons follow the item's number of panels
            re.sub(r"(?i)mask [A-C]\b", "mask X", re.sub(r"[\w-]{20,}|\d+", "T", fragment)))
    assert len(chunk_layouts) == 2  # one layout per variant, whatever the source
    assert colours["model"] == colours["volunteers"] == colours["sparcfire"]  # the same level set
    assert len({c for v, c in colours["model"] if v == "mask"}) == 2  # black and the one mask colour
    assert {structure: len(shapes) for structure, shapes in fragments.items()} == {"spiral": 1, "bar": 1}
    accuracy, low, high, chance = probe_accuracy(rows)
    assert low <= chance, (accuracy, low, high, chance)

    # the command prints the study's own (frozen) audit and exits 0
    out = io.StringIO()
    call_command("audit_blinding", str(study.pk), stdout=out)
    assert "holds" in out.getvalue() and "how the masks differ in content" in out.getvalue()


def test_matched_panels_of_three_sources_share_bytes_structure_and_levels(db):
    study = build_blinding_study(3, name="small matched", prefix="bm")
    seen: dict[str, set] = {}
    for c in Candidate.objects.filter(item__study=study).select_related("producer", "mask").exclude(
            mask__state="not_asked"):
        for variant in panels.MASK_VARIANTS:
            data = panels.candidate_png(c, variant)
            assert matched.encode(np.asarray(Image.open(io.BytesIO(data)))) == data
            px = np.asarray(Image.open(io.BytesIO(data)))
            seen.setdefault(c.producer.kind, set()).update(
                (variant, _chunks(data), data[16:29], col) for col in set(map(tuple, px.reshape(-1, px.shape[-1]))))
    assert seen["model"] == seen["volunteers"] == seen["sparcfire"]


def test_changing_a_drafts_display_drops_its_rendered_panels(db):
    study = build_blinding_study(2, name="draft display", prefix="bd", open_it=False)
    c = Candidate.objects.filter(item__study=study, mask__state="marked").first()
    matched_png = panels.candidate_png(c, "mask")
    assert PanelImage.objects.filter(candidate__item__study=study).count() == 1
    study_update(study=study, display="soft")
    assert not PanelImage.objects.filter(candidate__item__study=study).exists()
    assert panels.candidate_png(Candidate.objects.get(pk=c.pk), "mask") != matched_png


def test_opening_a_leaking_study_needs_a_logged_reason(db):
    study = build_blinding_study(12, name="soft study", prefix="bs", open_it=False, display="soft")
    check = study_check(study=study)
    assert check.blinding["audited"] and check.needs_override
    assert check.blinding["presentation"]["accuracy"] > 0.8  # the old soft display names the source
    with pytest.raises(StudyError, match="blinding audit"):
        study_open(study=study)
    study.refresh_from_db()
    assert study.state == Study.State.DRAFT
    study_open(study=study, override_reason="a pilot of the soft display, on purpose")
    study.refresh_from_db()
    assert study.state == Study.State.OPEN and study.blinding_audit["frozen"]
    log = StudyLog.objects.get(study=study, action="blinding audit overridden")
    assert log.reason == "a pilot of the soft display, on purpose"
    assert "LEAKS" in log.detail["audit"]
    # the command reports the leak and exits 1
    out = io.StringIO()
    with pytest.raises(CommandError, match="gives their source away"):
        call_command("audit_blinding", study.name, stdout=out)
    assert "presentation: LEAKS" in out.getvalue() and "features that leak most" in out.getvalue()
    opened = StudyLog.objects.get(study=study, action="opened")
    assert opened.detail["blinding_override_reason"] == log.reason


def test_a_blind_study_opens_without_a_reason_and_records_levels(db):
    study = build_blinding_study(12, name="matched study", prefix="bo")
    assert not StudyLog.objects.filter(study=study, action="blinding audit overridden").exists()
    opened = StudyLog.objects.get(study=study, action="opened")
    assert opened.detail["blinding_audit"].startswith("holds")
    assert {v["kind"] for v in opened.detail["display_levels"].values()} == {"model", "volunteers", "sparcfire"}
    staff = get_user_model().objects.create_user("staffer", password="pw-staff-123456", is_staff=True)
    client = Client()
    client.force_login(staff)
    page = client.get(f"/staff/ratings/{study.pk}/").content.decode()
    assert "Machine audit of the panels (frozen at opening" in page and "presentation: holds" in page
    assert "how the masks differ in content" in page
