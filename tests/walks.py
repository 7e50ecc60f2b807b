"""A rater's walk through the rating pages with Django's test client, and a crawler that records every
byte a rater receives."""
from __future__ import annotations

import re

from django.test import Client
from django.urls import reverse

from ratings.models import Answer, Assignment, Invitation, Rater
from ratings.services import panels


def walk_to_items(client, study):
    inv = Invitation.objects.create(study=study, max_uses=5)
    r = client.post(reverse("ratings:join", args=[inv.token]),
                    {"username": "ann", "password1": "a-long-pass-123", "password2": "a-long-pass-123"})
    assert r.status_code == 302
    r = client.get(reverse("ratings:study", args=[study.pk]), follow=True)
    assert b"I agree" in r.content
    client.post(reverse("ratings:consent", args=[study.pk]), {"agree": "yes"})
    r = client.post(reverse("ratings:profile", args=[study.pk]),
                    {"career_stage": "postdoc", "experience": "expert", "helped_build": "no"})
    assert r.status_code == 302
    r = client.get(reverse("ratings:study", args=[study.pk]), follow=True)
    assert b"How to rate" in r.content
    r = client.post(reverse("ratings:practice", args=[study.pk, 0]),
                    {"rank_0": 1, "rank_1": 2, "rank_2": 3, "quality_0": 3, "quality_1": 2, "quality_2": 1})
    assert r.status_code == 302
    assert not Answer.objects.exists()  # practice is never stored


class Crawler:
    """A rater's browser: records every URL, response, header and picture it receives."""

    def __init__(self, client: Client):
        self.client = client
        self.pages: dict[str, str] = {}
        self.pictures: dict[str, bytes] = {}
        self.urls: list[str] = []
        self.headers: list[dict] = []

    def _record(self, url: str, response):
        self.urls.append(url)
        self.headers.append({k.lower(): v for k, v in response.items()})
        if response.get("Location"):
            self.urls.append(response["Location"])
        for cookie in response.cookies.values():
            self.headers[-1][f"cookie:{cookie.key}"] = cookie.value

    def get(self, url: str, follow: bool = True):
        response = self.client.get(url)
        self._record(url, response)
        while follow and response.status_code == 302:
            url = response["Location"]
            response = self.client.get(url)
            self._record(url, response)
        assert response.status_code == 200, (url, response.status_code)
        if response["Content-Type"].startswith("text/html"):
            html = response.content.decode()
            self.pages[url] = html
            for src in re.findall(r'(?:src|href|action)="([^"#]+)"', html):
                if src.endswith(".png") and src not in self.pictures:
                    self.pictures[src] = self.get(src).content
                elif src.startswith("/"):
                    self.urls.append(src)
            for base in re.findall(r'data-base="([^"]+)"', html):  # the stretch selector's pictures
                for stretch in panels.IMAGE_VARIANTS:
                    if base + stretch + ".png" not in self.pictures:
                        self.pictures[base + stretch + ".png"] = self.get(base + stretch + ".png").content
        return response

    def post(self, url: str, data: dict):
        response = self.client.post(url, data)
        self._record(url, response)
        assert response.status_code == 302, (url, response.status_code, response.content[:500])
        return self.get(response["Location"])


def walk_raters(study, n: int, crawler_class=None, prefix: str = "rater") -> list:
    """``n`` new raters, each through one invitation, walk the whole study; their crawlers."""
    invitation = Invitation.objects.create(study=study, max_uses=n)
    crawlers = []
    for i in range(n):
        crawler = (crawler_class or Crawler)(Client())
        walk(crawler, study, invitation, f"{prefix}{i}")
        crawlers.append(crawler)
    return crawlers


def walk(crawler: Crawler, study, invitation: Invitation, username: str) -> Rater:
    c = crawler
    r = c.get(reverse("ratings:join", args=[invitation.token]))
    c.post(reverse("ratings:join", args=[invitation.token]),
           {"username": username, "password1": "pw-long-9-rater", "password2": "pw-long-9-rater"})
    c.post(reverse("ratings:consent", args=[study.pk]), {"agree": "yes"})
    r = c.post(reverse("ratings:profile", args=[study.pk]),
               {"career_stage": "faculty", "experience": "some", "helped_build": "no"})
    assert b"How to rate" in r.content
    for n in range(study.practice_items):
        c.get(reverse("ratings:practice", args=[study.pk, n]))
        r = c.post(reverse("ratings:practice", args=[study.pk, n]),
                   {"rank_0": 1, "rank_1": 2, "rank_2": 3, "quality_0": 3, "quality_1": 1, "quality_2": 0})
    rater = Rater.objects.get(user__username=username)
    for a in Assignment.objects.filter(rater=rater).order_by("position"):
        assert r.request["PATH_INFO"] == reverse("ratings:item", args=[a.token])
        r = c.post(reverse("ratings:item", args=[a.token]),
                   {"rank_0": 2, "rank_1": 1, "rank_2": 3, "quality_0": 2, "quality_1": 3, "quality_2": 1})
    assert "blinding" in r.request["PATH_INFO"] or "/check/" in r.request["PATH_INFO"]
    guesses = re.findall(r'name="(guess_[\w-]+)"', r.content.decode())
    assert len(set(guesses)) == 3
    r = c.post(reverse("ratings:blinding", args=[study.pk]), {g: "model" for g in guesses})
    assert b"Thank you" in r.content
    c.get(reverse("ratings:home"))
    return rater
