"""Permission matrix over EVERY URL of the site, for five kinds of visitor.

The URL list comes from the resolver, so a route added later is checked too: its path parameters are
filled with real objects by name (a new parameter name fails the test until a filler is added here), and
its expected statuses come from the policy rules below (a URL no rule covers fails the test).

Visitors: anonymous; a rater of another study; a rater of the study the objects belong to; staff (is_staff
with every permission of the segmentation and ratings apps, none of auth); a superuser. Only GET is sent
(nothing is changed except what the rater pages record on viewing); POST-only views must answer 405 to
those allowed in and a log-in redirect or 403 to others.
"""
from __future__ import annotations

import re
from collections import Counter

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from test_rating_data import build_study
from test_rating_pages import walk_to_items

from evalsite import queues
from ratings.models import Assignment, BlindingGuess, Invitation, Rater
from segmentation import generation, services
from segmentation.models import GenerationRun, Mask, Producer, TrainingRun

ROLES = ("anonymous", "other_rater", "rater", "staff", "superuser")
SOURCE_WORDS = ("volunteer", "gz3d", "sparcfire", "unet", "u-net", "producer", "/media/")
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def all_patterns(resolver=None, prefix="", namespace=""):
    """(route text, full name or '', pattern) for every URL pattern, nested includes expanded."""
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            ns = ":".join(x for x in (namespace, p.namespace) if x)
            yield from all_patterns(p, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = ":".join(x for x in (namespace, p.name) if x) if p.name else ""
            yield prefix + str(p.pattern), name, p


# --- the objects ------------------------------------------------------------------------------------------
@pytest.fixture
def world(db, redis_conn, django_capture_on_commit_callbacks):
    study = build_study(name="A study")
    other = build_study(name="Another study", prefix="og", reference=False)
    rater_client, other_client = Client(), Client()
    walk_to_items(rater_client, study)  # user "ann"
    # finish the rater's path so the blinding check exists: answer every item
    for assignment in Assignment.objects.filter(rater__user__username="ann"):
        rater_client.post(reverse("ratings:item", args=[assignment.token]),
                          {"rank_0": 1, "rank_1": 2, "rank_2": 3, "quality_0": 3, "quality_1": 2, "quality_2": 1})
    rater_client.get(reverse("ratings:study", args=[study.pk]))  # draws the blinding panels
    inv = Invitation.objects.create(study=other, max_uses=5)
    other_client.post(reverse("ratings:join", args=[inv.token]),
                      {"username": "bob", "password1": "b-long-pass-456", "password2": "b-long-pass-456"})
    assert Rater.objects.filter(user__username="bob", study=other).exists()

    from django.contrib.auth import get_user_model
    User = get_user_model()
    staff = User.objects.create_user("sam", password="s-long-pass-789", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["segmentation", "ratings"]))
    User.objects.create_superuser("root", password="r-long-pass-000")
    clients = {"anonymous": Client(), "other_rater": other_client, "rater": rater_client}
    for role, username, password in (("staff", "sam", "s-long-pass-789"), ("superuser", "root", "r-long-pass-000")):
        clients[role] = Client()
        assert clients[role].login(username=username, password=password)

    galaxy = study.items.first().galaxy
    with django_capture_on_commit_callbacks(execute=True):
        run = generation.generation_start(source="sparcfire", galaxies=[galaxy.pk], requested_by="sam")
    job_id = run.chunks.first().job_id
    training = TrainingRun.objects.create(config={"encoder": "resnet18"}, total_epochs=1)
    assignment = Assignment.objects.filter(rater__user__username="ann").first()
    mask = Mask.objects.filter(galaxy=galaxy, state="marked").first()
    batch = services.batch_start(kind="gz3d", source="test", arguments={})
    join_invitation = Invitation.objects.create(study=other, max_uses=50)
    objects = {
        "galaxy": galaxy, "image": mask.image, "mask": mask, "producer": Producer.objects.first(),
        "importbatch": batch, "volunteerclassification": None, "study": study, "rater": assignment.rater,
        "answer": assignment.answers.first(), "assignment": assignment,
        "blindingguess": BlindingGuess.objects.filter(rater=assignment.rater).first(), "trainingrun": training,
        "generationrun": run, "modelversion": None, "group": None, "user": User.objects.get(username="ann"),
        "dashboard": None,
    }
    return {"study": study, "clients": clients, "objects": objects, "job_id": job_id,
            "join_token": join_invitation.token, "assignment": assignment}


def fill(route: str, name: str, pattern, world) -> str | None:
    """A real URL for the pattern, or None for patterns that cannot be requested as such (regex oddities)."""
    objs, study, a = world["objects"], world["study"], world["assignment"]
    model = None
    m = re.match(r"admin/(\w+)/(\w+)/", route)
    if m:
        model = m.group(2)
    params = {
        "study_id": study.pk, "n": 0, "queue_index": 0, "scheduler_index": 0, "connection_index": 0,
        "job_id": world["job_id"], "result_id": "0", "key": "nobody", "scheduler_name": "none",
        "cron_job_name": "none", "kind": "answers", "fingerprint": "0" * 16, "name": "p0-mask",
        "structure": "spiral", "level": 1, "variant": "mask", "app_label": "segmentation",
    }
    converters = dict(re.findall(r"<(?:(\w+):)?(\w+)>", route)[::-1] and
                      [(k, c) for c, k in re.findall(r"<(?:(\w+):)?(\w+)>", route)])
    regex_groups = re.findall(r"\(\?P<(\w+)>", route)
    kwargs = {}
    for key in [*converters, *regex_groups]:
        if key == "token":
            if name == "ratings:join":
                kwargs[key] = world["join_token"]
            elif name == "ratings:blinding-png":
                kwargs[key] = objs["blindingguess"].token
            elif name.startswith("ratings:item"):
                kwargs[key] = a.token
            else:
                kwargs[key] = "notatoken"
        elif key in ("object_id", "id", "pk"):
            obj = objs.get(model) if model else None
            if name == "segmentation:image-png":
                obj = objs["image"]
            elif name == "segmentation:mask-png":
                obj = objs["mask"]
            elif name == "admin:segmentation_importbatch_gallery":
                obj = objs["importbatch"]
            if obj is None:
                obj = objs["user"] if model == "user" else None
            kwargs[key] = obj.pk if obj is not None else 1
        elif key == "content_type_id":
            kwargs[key] = ContentType.objects.get_for_model(Mask).pk
            kwargs["object_id"] = objs["mask"].pk
        elif key == "url":
            kwargs[key] = "no/such/page/"
        elif key in params:
            kwargs[key] = params[key]
        else:
            pytest.fail(f"URL {route!r} ({name}) has a path parameter {key!r} this matrix cannot fill; add it")
    if name.endswith("ratings:practice-png") or name == "ratings:practice-png":
        kwargs["name"] = "p0-mask"
    if name:
        try:
            return reverse(name, kwargs=kwargs) if kwargs else reverse(name)
        except Exception:
            return None
    # unnamed: the admin's object redirect and catch-all
    url = "/" + route
    for key, value in kwargs.items():
        url = re.sub(rf"<(?:\w+:)?{key}>", str(value), url)
    url = re.sub(r"\(\?P<url>\.\*\)\$$", "no/such/page/", url)
    return None if "(" in url or "^" in url else url


def test_dump(world):
    rows = []
    seen = set()
    for route, name, pattern in all_patterns():
        url = fill(route, name, pattern, world)
        if url is None or url in seen:
            continue
        seen.add(url)
        line = [url, name]
        for role in ROLES:
            client = world["clients"][role]
            client.raise_request_exception = False
            r = client.get(url)
            loc = r.get("Location", "")
            tag = str(r.status_code)
            if r.status_code == 302:
                tag += "L" if loc.startswith(LOGIN) else ("A" if loc.startswith(ADMIN_LOGIN) else "")
            line.append(tag)
        rows.append(line)
    for line in rows:
        print(" ".join(str(x) for x in line))
    print(Counter(tuple(x[2:]) for x in rows))
    assert False
