"""Usernames: one comparison form (NFKC, then case folding) for sign-up, log-in and the log-in limit.

``username_key`` is what two usernames are compared by: ``ｒater1`` (full-width r), ``Rater1`` and ``rater1``
are one name. Sign-up refuses a name whose key another account has; log-in finds the account by key (an
exact match first, so accounts made before this rule keep working); the log-in limit counts failures per
key, so no spelling of a name has a counter of its own.

A taken name is refused at sign-up with the words used for any name that cannot be had, never "exists".
"""
from __future__ import annotations

import unicodedata

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError


def username_key(username: str) -> str:
    """The form usernames are compared in: NFKC, case-folded, NFKC again (so folding cannot leave a
    compatibility character behind), without surrounding white space."""
    folded = unicodedata.normalize("NFKC", username or "").casefold()
    return unicodedata.normalize("NFKC", folded).strip()


def users_named(username: str) -> list:
    """Every account whose username has the same key as ``username`` (normally none or one).

    Case folding differs from the databases' own case-insensitive matching (``ß`` folds to ``ss``; SQLite
    folds ASCII only), so keys are compared here; a site's accounts are a few hundred names at most."""
    key = username_key(username)
    if not key:
        return []
    model = get_user_model()
    ids = [pk for pk, name in model._default_manager.values_list("pk", model.USERNAME_FIELD).iterator()
           if username_key(name) == key]
    return list(model._default_manager.filter(pk__in=ids))


def user_for_login(username: str):
    """The one account a log-in name means: the exact username, else the only account with the same key;
    None when there is none, or when several older accounts share the key (then only the exact name works)."""
    model = get_user_model()
    exact = model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()
    if exact is not None:
        return exact
    found = users_named(username)
    return found[0] if len(found) == 1 else None


class NormalisedUsernameBackend(ModelBackend):
    """Django's model backend, finding the account by ``user_for_login`` instead of the exact username."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        model = get_user_model()
        if username is None:
            username = kwargs.get(model.USERNAME_FIELD)
        if username is None or password is None:
            return None
        user = user_for_login(username)
        if user is None:
            # run the hasher once anyway, so a missing name takes as long as a wrong password
            model().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


UNAVAILABLE = "This username cannot be used. Choose another one, or log in if you have an account."


class SignUpForm(UserCreationForm):
    """Django's sign-up form with usernames unique by ``username_key`` (not only by exact spelling or by
    the database's ASCII case rules), refused in words that do not say whether an account exists."""

    def clean_username(self):
        username = self.cleaned_data.get("username")  # UsernameField has applied NFKC already
        if username and users_named(username):
            raise ValidationError(UNAVAILABLE, code="unavailable")
        return username
