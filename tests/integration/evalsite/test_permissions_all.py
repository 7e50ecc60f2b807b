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

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse

from evalsite import queues
from ratings.models import Assignment, BlindingGuess, Invitation, Rater
from segmentation import jobs
from segmentation.models import GenerationRun, Mask, MeasurementRun, Producer, TrainingRun
from segmentation.services import measurement_runs
from segmentation.services.imports.batches import batch_start
from tests.factories.studies import spiral_study
from tests.walks import walk_to_items

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
    study = spiral_study(name="A study")
    other = spiral_study(name="Another study", prefix="og", reference=False)
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
        run = jobs.generation_launch(source="sparcfire", galaxies=[galaxy.pk], requested_by="sam")
    job_id = run.chunks.first().job_id
    training = TrainingRun.objects.create(config={"encoder": "resnet18"}, total_epochs=1)
    measuring = measurement_runs.measurement_start(names=[galaxy.name], requested_by="sam")
    assignment = Assignment.objects.filter(rater__user__username="ann").first()
    mask = Mask.objects.filter(galaxy=galaxy, state="marked").first()
    batch = batch_start(kind="gz3d", source="test", arguments={})
    join_invitation = Invitation.objects.create(study=other, max_uses=50)
    objects = {
        "galaxy": galaxy, "image": mask.image, "mask": mask, "producer": Producer.objects.first(),
        "importbatch": batch, "volunteerclassification": None, "study": study, "rater": assignment.rater,
        "answer": assignment.answers.first(), "assignment": assignment,
        "blindingguess": BlindingGuess.objects.filter(rater=assignment.rater).first(), "trainingrun": training,
        "generationrun": run, "measurementrun": measuring,
        "modelversion": None, "group": None, "user": User.objects.get(username="ann"),
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
    path_params = [key for _, key in re.findall(r"<(?:(\w+):)?(\w+)>", route)]
    regex_groups = re.findall(r"\(\?P<(\w+)>", route)
    kwargs = {}
    for key in [*path_params, *regex_groups]:
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
    if name:
        try:
            return reverse(name, kwargs=kwargs) if kwargs else reverse(name)
        except NoReverseMatch:  # django-rq's regex routes with optional groups: the other variant is tried
            return None
    # unnamed: the admin's object redirect and catch-all
    url = "/" + route
    for key, value in kwargs.items():
        url = re.sub(rf"<(?:\w+:)?{key}>", str(value), url)
    url = re.sub(r"\(\?P<url>\.\*\)\$$", "no/such/page/", url)
    return None if "(" in url or "^" in url else url


# --- the policy ---------------------------------------------------------------------------------------------
STAFF_AREA = re.compile(r"^(admin:|django_rq:|segmentation:)")
# third-party django-rq pages that fail with 500 for ids that do not exist (staff only; reported upstream-style
# in docs/faults.md): a bogus worker key, no scheduler running, and the dashboard's table-less fake model
THIRD_PARTY_500 = {"django_rq:worker_details", "admin:django_rq_worker_details", "django_rq:scheduler_jobs",
                   "admin:django_rq_scheduler_jobs", "admin:django_rq_dashboard_history",
                   "admin:django_rq_dashboard_delete", "admin:django_rq_dashboard_change"}
STAFF_OK = {200, 302, 403, 404, 405, 409}


def expected(name: str, url: str) -> dict[str, set]:
    """Allowed statuses per role. "302L"/"302A": a redirect to the site's / the admin's log-in page."""
    everyone = dict.fromkeys(ROLES)
    if name == "login":
        return {r: {"200"} for r in everyone}
    if name in ("logout", "ratings_staff:unlock"):  # POST-only, refused before anything else
        return {r: {"405"} for r in everyone}
    if url == "/":
        return {r: {"302"} for r in everyone}
    if name == "ratings:home":
        return {**{r: {"200"} for r in everyone}, "anonymous": {"302L"}}
    if name == "ratings:join":  # the invitation link: sign-up form, or join and go to the study
        return {**{r: {"302", "400"} for r in everyone}, "anonymous": {"200"}}
    if name.startswith("ratings:"):
        return {"anonymous": {"302L"}, "other_rater": {"404"}, "rater": {"200", "302"}, "staff": {"404"},
                "superuser": {"404"}}
    staff_ok = {str(s) for s in STAFF_OK} | ({"500"} if name in THIRD_PARTY_500 else set())
    if name.startswith("ratings_staff:"):
        return {"anonymous": {"302L"}, "other_rater": {"403"}, "rater": {"403"}, "staff": staff_ok,
                "superuser": staff_ok}
    if name.endswith("home_json"):  # django-rq's stats API: staff session or API token
        return {"anonymous": {"401"}, "other_rater": {"401"}, "rater": {"401"}, "staff": {"200"},
                "superuser": {"200"}}
    if url == "/admin/login/":
        return {"anonymous": {"200"}, "other_rater": {"200"}, "rater": {"200"}, "staff": {"302"},
                "superuser": {"302"}}
    if name == "admin:logout":
        return {"anonymous": {"302"}, "other_rater": {"302"}, "rater": {"302"}, "staff": {"405"},
                "superuser": {"405"}}
    if name.startswith("segmentation:"):
        return {"anonymous": {"302A"}, "other_rater": {"403"}, "rater": {"403"}, "staff": {"200"},
                "superuser": {"200"}}
    if STAFF_AREA.match(name) or url.startswith("/admin/"):
        # auth's pages are not for staff; the unnamed /admin/<model>/<id>/ only redirects to the change page
        staff = {"403"} if url.startswith("/admin/auth/user/") and name else staff_ok
        # the superuser may do anything the admin offers; 403 only where no one may (add/delete refused by
        # design, the autocomplete endpoint without its parameters)
        superuser = staff_ok - {"403"} | ({"403"} if name.endswith(("_add", "_delete", "autocomplete")) else set())
        return {"anonymous": {"302A"}, "other_rater": {"302A"}, "rater": {"302A"}, "staff": staff,
                "superuser": superuser}
    pytest.fail(f"no permission rule for {url} ({name or 'unnamed'}); add one to this test")


def status_tag(response) -> str:
    tag = str(response.status_code)
    if response.status_code == 302:
        location = response.get("Location", "")
        tag += "L" if location.startswith(LOGIN) else ("A" if location.startswith(ADMIN_LOGIN) else "")
    return tag


def test_every_url_answers_every_visitor_as_the_policy_says(world):
    mismatches, checked, seen = [], 0, set()
    for route, name, pattern in all_patterns():
        url = fill(route, name, pattern, world)
        if url is None or url in seen:
            continue
        seen.add(url)
        rules = expected(name, url)
        for role in ROLES:
            client = world["clients"][role]
            client.raise_request_exception = False
            # a view whose query fails leaves PostgreSQL's transaction aborted: roll back to before it
            savepoint = transaction.savepoint()
            response = client.get(url)
            if response.status_code >= 500:
                transaction.savepoint_rollback(savepoint)
            else:
                transaction.savepoint_commit(savepoint)
            tag = status_tag(response)
            allowed = rules[role]
            # "302A" also satisfies a rule saying plain "302", never the other way round
            if tag not in allowed and not (tag[:3] in allowed and len(tag) > 3):
                mismatches.append(f"{role:12s} GET {url} ({name}): {tag}, expected {sorted(allowed)}")
            # the closing blinding check asks which source a panel came from, so it lists them (the same
            # list under every panel); everything else a rater receives must not name one
            textual = response.get("Content-Type", "").startswith(("text/", "application/json"))
            if name != "ratings:blinding" and role in ("anonymous", "other_rater", "rater") and textual:
                body = b"".join(response.streaming_content) if response.streaming else response.content
                text = body.decode(errors="replace").lower()
                leaked = [w for w in SOURCE_WORDS if w in text]
                if leaked:
                    mismatches.append(f"{role:12s} GET {url}: body names a source ({leaked})")
            checked += 1
    assert not mismatches, "\n".join(mismatches)
    assert len(seen) >= 150 and checked == len(seen) * len(ROLES)
    # the gated pages the issue names: exports and job launches are for staff only
    for url in ("/admin/segmentation/generationrun/add/", "/admin/segmentation/trainingrun/add/",
                "/admin/segmentation/measurementrun/add/",
                reverse("ratings_staff:dashboard", args=[world["study"].pk])):
        assert world["clients"]["staff"].get(url).status_code == 200
        for role in ("anonymous", "other_rater", "rater"):
            assert world["clients"][role].get(url).status_code in (302, 403)


def test_job_launches_and_exports_refuse_non_staff_posts(world):
    study, galaxy = world["study"], world["objects"]["galaxy"]
    runs_before = GenerationRun.objects.count(), TrainingRun.objects.count(), MeasurementRun.objects.count()
    launches = {
        "/admin/segmentation/generationrun/add/": {"source": "sparcfire", "galaxies": "any", "names": galaxy.name,
                                                    "image_kind": "survey_cutout", "chunk_size": 8},
        "/admin/segmentation/trainingrun/add/": {"encoder": "resnet18", "image_size": 64, "epochs": 1,
                                                  "field_of_view": 1, "batch_size": 2, "learning_rate": 0.001,
                                                  "loss": "l1", "galaxies": "any", "image_kind": "survey_cutout"},
        "/admin/segmentation/measurementrun/add/": {"source": "", "structure": "", "galaxies": "any", "split": "",
                                                     "names": galaxy.name, "image_kind": "", "chunk_size": 8},
        reverse("admin:ratings_study_close", args=[study.pk]): {},
        reverse("ratings_staff:unlock", args=[study.pk]): {},
    }
    for role in ("anonymous", "other_rater", "rater"):
        client = world["clients"][role]
        for url, data in launches.items():
            response = client.post(url, data)
            assert response.status_code in (302, 403), (role, url, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith((LOGIN, ADMIN_LOGIN)), (role, url)
    assert (GenerationRun.objects.count(), TrainingRun.objects.count(), MeasurementRun.objects.count()) == runs_before
    study.refresh_from_db()
    assert study.state == "open"
    assert queues.get_queue(queues.GENERATION).count == 1  # only the fixture's own run
