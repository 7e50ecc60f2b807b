"""What staff pages share: one access rule for staff-only views, one read-only admin."""
from __future__ import annotations

from functools import wraps

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import resolve_url


def staff_required(permission: str | None = None, *, login_url: str | None = None):
    """A view decorator. Anonymous visitors go to the log-in page (``login_url``, else LOGIN_URL) and come
    back; signed-in users who are not active staff, or lack ``permission`` when one is given, get 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path(), resolve_url(login_url) if login_url else None)
            if not (user.is_active and user.is_staff) or (permission and not user.has_perm(permission)):
                raise PermissionDenied("staff only" + (f", with permission {permission}" if permission else ""))
            return view(request, *args, **kwargs)
        return wrapped
    return decorator


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by services only (imports, generation, raters' own pages, which keep their history):
    staff look; nobody adds, edits or deletes them in the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
