"""Hostile and odd input on the rating pages: ranks and levels in other digits, time on an item that is not a
time, comments over the limit, sign-up through used-up links and under other spellings of a taken name,
name probing through the join form. What a script can send that a browser never would, sent as a script
would (the people's side of the same rules is in tests/browser/test_rater_accounts.py)."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from evalsite.accounts import UNAVAILABLE, username_key
from ratings.models import Answer, Assignment, Invitation, Rater
from ratings.services.studies import COMMENT_MAX_CHARS, SECONDS_CAP, answer_submit_form, study_close
from tests.factories.studies import ready_rater, spiral_study

ANSWERS = {"rank_0": "1", "rank_1": "2", "rank_2": "3", "quality_0": "3", "quality_1": "2", "quality_2": "1"}
PYTHON_WORDS = [b"invalid literal", b"Traceback", b"ValueError", b"could not convert", b"int()", b"float()"]


@pytest.fixture
def study(db):
    return spiral_study(name="Input study", n_galaxies=3, planned_raters=3, raters_per_item=2, practice_items=1)


@pytest.fixture
def rater_client(study):
    user = get_user_model().objects.create_user("ann", password="ann-pass-12345")
    rater = ready_rater(study, user)
    client = Client()
    client.force_login(user)
    return client, rater


def first_item(rater) -> Assignment:
    return Assignment.objects.filter(rater=rater).order_by("position").first()


def assert_plain(response, message: bytes):
    assert response.status_code == 200, response.status_code
    assert message in response.content, response.content.decode()[:3000]
    for word in PYTHON_WORDS:
        assert word not in response.content, word


# --- ranks and quality levels: ASCII digits only ----------------------------------------------------------
@pytest.mark.parametrize("value", ["²", "٢", "２", "2.0", "1e0", "-1", " ", "two"])
def test_a_rank_in_other_digits_is_refused_in_words_on_item_and_practice_pages(study, rater_client, value):
    client, rater = rater_client
    item = first_item(rater)
    for url in (reverse("ratings:item", args=[item.token]), reverse("ratings:practice", args=[study.pk, 0])):
        response = client.post(url, {**ANSWERS, "rank_1": value})
        assert_plain(response, b"Mask B needs a rank and a quality." if not value.strip()
                     else b"Mask B: the rank must be one of 1, 2, 3.")
    assert not Answer.objects.exists()


def test_a_quality_level_in_other_digits_is_refused(rater_client):
    client, rater = rater_client
    response = client.post(reverse("ratings:item", args=[first_item(rater).token]), {**ANSWERS, "quality_0": "٣"})
    assert_plain(response, b"Mask A: the quality must be one of the four levels.")
    assert not Answer.objects.exists()


def test_a_refused_save_shows_what_the_rater_entered(rater_client):
    client, rater = rater_client
    url = reverse("ratings:item", args=[first_item(rater).token])
    response = client.post(url, {**ANSWERS, "quality_2": "", "comment": "arms faint", "flag": "on"})
    page = response.content.decode()
    assert_plain(response, b"Mask C needs a rank and a quality.")
    assert 'name="rank_1" value="2" checked' in page and 'name="quality_0" value="3" checked' in page
    assert ">arms faint</textarea>" in page and 'id="flag" checked' in page


# --- time on an item ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "Infinity", "nan", "-5", "1e400", "abc", "١٢", "12,5"])
def test_time_that_is_not_a_finite_number_of_seconds_is_refused(rater_client, value):
    client, rater = rater_client
    item = first_item(rater)
    response = client.post(reverse("ratings:item", args=[item.token]), {**ANSWERS, "seconds": value})
    assert_plain(response, b"The time on this item could not be read.")
    item.refresh_from_db()
    assert item.seconds_spent == 0 and item.submitted_at is None
    assert not Answer.objects.exists()


def test_time_is_capped_and_counted_once_per_change_of_the_answer(rater_client):
    client, rater = rater_client
    item = first_item(rater)
    url = reverse("ratings:item", args=[item.token])
    assert client.post(url, {**ANSWERS, "seconds": "99999"}).status_code == 302
    item.refresh_from_db()
    assert item.seconds_spent == SECONDS_CAP == 3600
    for _ in range(3):  # the same answer again (a double click, a reload of the form): no time added
        assert client.post(url, {**ANSWERS, "seconds": "40"}).status_code == 302
    item.refresh_from_db()
    assert item.seconds_spent == 3600
    assert client.post(url, {**ANSWERS, "quality_2": "0", "seconds": "12.5"}).status_code == 302  # a revision
    assert client.post(url, {**ANSWERS, "quality_2": "0", "seconds": "12.5"}).status_code == 302  # its repeat
    assert client.post(url, {**ANSWERS, "quality_2": "0", "comment": "faint", "seconds": "2"}).status_code == 302
    item.refresh_from_db()
    assert item.seconds_spent == 3600 + 12.5 + 2
    assert Answer.objects.get(assignment=item, panel_position=2).edits == 1


# --- comments -----------------------------------------------------------------------------------------
def test_a_comment_over_the_limit_is_refused_never_cut(rater_client):
    client, rater = rater_client
    item = first_item(rater)
    long = "x" * 1_000_000
    response = client.post(reverse("ratings:item", args=[item.token]), {**ANSWERS, "comment": long})
    assert_plain(response, b"Your comment has 1,000,000 characters; the limit is 2,000.")
    assert long.encode() in response.content  # kept on the page for the rater to shorten
    item.refresh_from_db()
    assert item.comment == "" and not Answer.objects.exists()
    exactly = "y" * COMMENT_MAX_CHARS
    assert client.post(reverse("ratings:item", args=[item.token]), {**ANSWERS, "comment": exactly}).status_code == 302
    item.refresh_from_db()
    assert item.comment == exactly


# --- accounts -----------------------------------------------------------------------------------------
def sign_up(client, invitation, username, password="a-long-rater-pass-7"):
    return client.post(reverse("ratings:join", args=[invitation.token]),
                       {"username": username, "password1": password, "password2": password})


def test_a_used_up_invitation_makes_no_account_and_logs_nobody_in(study):
    invitation = Invitation.objects.create(study=study, max_uses=1)
    first, late = Client(), Client()
    form = late.get(reverse("ratings:join", args=[invitation.token]))  # the form, while the link was fresh
    assert form.status_code == 200 and b"password" in form.content
    assert sign_up(first, invitation, "first").status_code == 302
    refused = sign_up(late, invitation, "latecomer")
    assert refused.status_code == 400 and b"not valid any more" in refused.content
    assert not get_user_model().objects.filter(username="latecomer").exists()
    assert "_auth_user_id" not in late.session
    assert late.get(reverse("ratings:home")).status_code == 302  # still anonymous: sent to log in
    assert Rater.objects.filter(study=study).count() == 1
    invitation.refresh_from_db()
    assert invitation.uses == 1


def test_a_full_study_makes_no_account_either(db):
    small = spiral_study(name="Full", n_galaxies=2, planned_raters=1, raters_per_item=1)
    invitation = Invitation.objects.create(study=small, max_uses=5)
    assert sign_up(Client(), invitation, "one").status_code == 302
    refused = sign_up(Client(), invitation, "two")
    assert refused.status_code == 400 and b"Every planned rater place" in refused.content
    assert not get_user_model().objects.filter(username="two").exists()


@pytest.mark.parametrize("spelling", ["rater1", "Rater1", "RATER1", "ｒater1", "ＲＡＴＥＲ１", " rater1"])
def test_sign_up_refuses_every_spelling_of_a_taken_name_without_saying_it_exists(study, spelling):
    get_user_model().objects.create_user("rater1", password="rater1-pass-123")
    invitation = Invitation.objects.create(study=study, max_uses=5)
    response = sign_up(Client(), invitation, spelling)
    assert response.status_code == 200
    assert UNAVAILABLE.encode() in response.content
    for telling in (b"already exists", b"exists", b"taken", b"already"):
        assert telling not in response.content.lower(), telling
    assert get_user_model().objects.count() == 1


def test_case_folding_goes_beyond_lower_case(study):
    get_user_model().objects.create_user("Straße", password="strasse-pass-123")
    assert username_key("STRASSE") == username_key("straße") == "strasse"
    invitation = Invitation.objects.create(study=study, max_uses=5)
    assert UNAVAILABLE.encode() in sign_up(Client(), invitation, "STRASSE").content
    client = Client()
    assert client.post("/accounts/login/", {"username": "strasse", "password": "strasse-pass-123"}).status_code == 302


def test_log_in_finds_the_account_under_any_spelling_and_older_look_alikes_keep_their_exact_names(db):
    users = get_user_model().objects
    users.create_user("rater1", password="rater1-pass-123")
    for spelling in ("rater1", "RATER1", "ｒater1"):
        client = Client()
        assert client.post("/accounts/login/", {"username": spelling, "password": "rater1-pass-123"}).status_code == 302
        assert client.session["_auth_user_id"] == str(users.get(username="rater1").pk)
    # two accounts made before the rule that differ only in case: each by its exact name, neither by a third
    users.create_user("Bob", password="bob-upper-pass-1")
    users.create_user("bob", password="bob-lower-pass-1")
    assert Client().post("/accounts/login/", {"username": "Bob", "password": "bob-upper-pass-1"}).status_code == 302
    assert Client().post("/accounts/login/", {"username": "bob", "password": "bob-lower-pass-1"}).status_code == 302
    assert Client().post("/accounts/login/", {"username": "BOB", "password": "bob-upper-pass-1"}).status_code == 200


def test_every_spelling_of_a_name_shares_one_log_in_counter(db, settings):
    settings.EVALSITE_LOGIN_MAX_FAILURES_PER_USER = 5
    settings.EVALSITE_LOGIN_MAX_FAILURES_PER_IP = 50
    get_user_model().objects.create_user("rater1", password="rater1-pass-123")
    client = Client()
    for spelling in ("rater1", "Rater1", "ｒater1", "ＲＡＴＥＲ１", "rater1"):
        assert client.post("/accounts/login/", {"username": spelling, "password": "wrong"}).status_code == 200
    for spelling in ("ｒater1", "RATER1", "rater1"):
        refused = client.post("/accounts/login/", {"username": spelling, "password": "rater1-pass-123"})
        assert refused.status_code == 429, spelling
    assert "_auth_user_id" not in client.session


def test_probing_names_through_the_join_form_is_limited_like_guessing_passwords(study, settings):
    settings.EVALSITE_LOGIN_MAX_FAILURES_PER_IP = 4
    users = get_user_model().objects
    for name in ("ann", "bob", "cat", "dan"):
        users.create_user(name, password=f"{name}-pass-12345")
    invitation = Invitation.objects.create(study=study, max_uses=5)
    prober = Client(REMOTE_ADDR="198.51.100.9")
    for name in ("ann", "bob", "cat", "dan"):
        assert UNAVAILABLE.encode() in sign_up(prober, invitation, name).content
    refused = sign_up(prober, invitation, "eve")
    assert refused.status_code == 429
    assert not users.filter(username="eve").exists()
    # someone else, from another address, joins as usual
    assert sign_up(Client(REMOTE_ADDR="198.51.100.10"), invitation, "eve").status_code == 302


# --- the way back from the thank-you page ----------------------------------------------------------------
def test_the_thank_you_page_links_back_to_every_item_and_home_leads_there(study, rater_client):
    client, rater = rater_client
    items = list(Assignment.objects.filter(rater=rater).order_by("position"))
    for a in items:
        answer_submit_form(assignment=a, data=ANSWERS)
    assert client.get(reverse("ratings:study", args=[study.pk]))["Location"].endswith("/check/")
    client.get(reverse("ratings:blinding", args=[study.pk]))
    client.post(reverse("ratings:blinding", args=[study.pk]), {"skip": "1"})
    done = client.get(reverse("ratings:study", args=[study.pk])).content.decode()
    assert "You can still go back and change an answer" in done
    for n, a in enumerate(items, start=1):
        assert f'href="/rate/a/{a.token}/" aria-label="change the answer to item {n}"' in done
    home = client.get(reverse("ratings:home")).content.decode()
    assert f'href="/rate/s/{study.pk}/">Review answers</a>' in home
    study_close(study=study)
    closed = client.get(reverse("ratings:study", args=[study.pk])).content.decode()
    assert "/rate/a/" not in closed and "change an answer" not in closed  # nothing can change any more
