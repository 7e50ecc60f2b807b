"""Admin for studies: design, galaxy selection, the pre-opening check, open/close, invitations, log.

Raters' answers are visible here to staff only (read-only); the outcome figures live on the study's
results page (evalcore/study/stats), shown once the study is closed or an admin unlocks them.
"""
from __future__ import annotations

import random

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from evalsite.staff import ReadOnlyAdmin
from ratings import audit
from ratings.jobs import study_render_enqueue
from ratings.models import Answer, AnswerRevision, Assignment, BlindingGuess, Invitation, Rater, Study, StudyLog
from ratings.services.studies import (
    StudyError,
    study_check,
    study_close,
    study_open,
    study_set_items,
    study_update,
)
from segmentation.models import Galaxy


class SelectionForm(forms.Form):
    MODES = [("sample", "A seeded random sample of N galaxies"), ("names", "An explicit list of names"),
             ("filter", "Every galaxy matching the filter")]
    mode = forms.ChoiceField(choices=MODES)
    n = forms.IntegerField(min_value=1, required=False, help_text="For a sample.")
    seed = forms.IntegerField(initial=0, required=False)
    names = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="One per line.")
    synthetic = forms.ChoiceField(choices=[("any", "synthetic and real"), ("only", "synthetic only"),
                                           ("exclude", "real only")], initial="any")
    test_split_only = forms.BooleanField(required=False, initial=True,
                                         help_text="Only galaxies of the held-out test split.")


def selected_galaxies(data: dict, study: Study) -> tuple[list[Galaxy], dict]:
    """The galaxies the form asks for. "Test split only" uses the compared model version's manifest when the
    study names one (the split that model really used), else the sky-cell split."""
    qs = Galaxy.objects.order_by("pk")
    if data["synthetic"] != "any":
        qs = qs.filter(synthetic=data["synthetic"] == "only")
    galaxies = list(qs)
    if data["mode"] == "names":
        wanted = [n.strip() for n in data["names"].splitlines() if n.strip()]
        by_name = {g.name: g for g in galaxies}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise ValueError(f"unknown galaxies: {', '.join(missing[:20])}")
        galaxies = [by_name[n] for n in wanted]
    if data["test_split_only"] and study.test_split_of_id:
        from segmentation.selectors.model_versions import model_version_splits

        used = {gid for gid, split in model_version_splits(study.test_split_of).items() if split != "test"}
        galaxies = [g for g in galaxies if g.pk not in used]
    elif data["test_split_only"]:
        from evalcore.sky.splits import split_for

        galaxies = [g for g in galaxies if split_for(g.ra, g.dec, name=g.name) == "test"]
    if data["mode"] == "sample":
        n = data.get("n") or 0
        if n < 1:
            raise ValueError("say how many galaxies to sample")
        galaxies = random.Random(data.get("seed") or 0).sample(galaxies, min(n, len(galaxies)))
    return galaxies, {k: v for k, v in data.items()}


class InvitationInline(admin.TabularInline):
    model = Invitation
    extra = 0
    fields = ("token_link", "note", "max_uses", "uses")
    readonly_fields = ("token_link", "uses")

    @admin.display(description="link")
    def token_link(self, inv):
        if not inv.pk:
            return "(saved with the study)"
        url = reverse("ratings:join", args=[inv.token])
        return format_html('<code>{}</code>', url)


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    def view_on_site(self, obj):
        """The study's staff dashboard (progress, and results once closed or unlocked)."""
        return reverse("ratings_staff:dashboard", args=[obj.pk])

    list_display = ("name", "state", "n_items", "n_raters", "n_answers", "created_at")
    list_filter = ("state",)
    filter_horizontal = ("sources",)
    inlines = [InvitationInline]
    change_form_template = "admin/ratings/study/change_form.html"
    fieldsets = [
        (None, {"fields": ("name", "instructions", "consent_text", "structures", "sources")}),
        ("Display", {"fields": ("display", "threshold", "display_overrides")}),
        ("Design", {"fields": ("raters_per_item", "repeat_rate", "attention_rate", "practice_items", "seed",
                               "test_split_of", "training_override", "training_override_reason")}),
        ("Pre-registration (frozen when the study opens)", {"fields": ("primary_question", "planned_items",
                                                                       "planned_raters", "stopping_rule")}),
        ("State", {"fields": ("state", "opened_at", "closed_at", "results_unlocked_at")}),
    ]
    readonly_fields = ("state", "opened_at", "closed_at", "results_unlocked_at")

    @admin.display(description="items")
    def n_items(self, s):
        return s.items.filter(kind="real").count()

    @admin.display(description="raters")
    def n_raters(self, s):
        return s.raters.count()

    @admin.display(description="answers")
    def n_answers(self, s):
        return Answer.objects.filter(assignment__study=s).count()

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.state != Study.State.DRAFT:
            return [*self.readonly_fields, *[f for f in Study.FROZEN_FIELDS if not f.endswith("_id")],
                    "test_split_of", "sources", "display_overrides"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not obj.created_by_id:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def get_urls(self):
        return [
            path("<path:object_id>/select/", self.admin_site.admin_view(self.select_view), name="ratings_study_select"),
            path("<path:object_id>/open/", self.admin_site.admin_view(require_POST(self.open_view)),
                 name="ratings_study_open"),
            path("<path:object_id>/close/", self.admin_site.admin_view(require_POST(self.close_view)),
                 name="ratings_study_close"),
            *super().get_urls(),
        ]

    def _study(self, object_id) -> Study:
        study = Study.objects.filter(pk=unquote(object_id)).first()
        if study is None:
            raise Http404("no such study")
        return study

    def change_view(self, request, object_id, form_url="", extra_context=None):
        study = self._study(object_id)
        check = study_check(study=study) if study.state == Study.State.DRAFT else None
        extra = {"check": check, "log": StudyLog.objects.filter(study=study)[:50], "study": study,
                 "audit_lines": audit.report_lines(check.blinding) if check and check.blinding else [],
                 "level_lines": audit.level_lines(check.levels, study.structures) if check else []}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def select_view(self, request, object_id):
        study = self._study(object_id)
        form = SelectionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                galaxies, record = selected_galaxies(form.cleaned_data, study)
                n = study_set_items(study=study, galaxies=galaxies, user=request.user)
                study_update(study=study, user=request.user, selection=record)
                messages.success(request, f"{n} items from {len(galaxies)} galaxies.")
                return HttpResponseRedirect(reverse("admin:ratings_study_change", args=[study.pk]))
            except (ValueError, StudyError) as exc:
                form.add_error(None, str(exc))
        context = {**self.admin_site.each_context(request), "opts": Study._meta, "form": form,
                   "title": f"Choose galaxies for {study}", "study": study}
        return TemplateResponse(request, "admin/ratings/study/select.html", context)

    def open_view(self, request, object_id):
        study = self._study(object_id)
        try:
            study_open(study=study, user=request.user, override_reason=request.POST.get("override_reason", ""))
            job = study_render_enqueue(study=study)
            messages.success(request, f"{study} is open: {Assignment.objects.filter(study=study).count()} "
                                      f"assignments generated; its panels are being rendered (job {job}).")
        except StudyError as exc:
            messages.error(request, f"Not opened: {exc}")
        return HttpResponseRedirect(reverse("admin:ratings_study_change", args=[study.pk]))

    def close_view(self, request, object_id):
        study = self._study(object_id)
        try:
            study_close(study=study, user=request.user)
            messages.success(request, f"{study} is closed.")
        except StudyError as exc:
            messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("admin:ratings_study_change", args=[study.pk]))


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = ("pseudonym", "study", "user", "is_staff", "career_stage", "experience", "helped_build",
                    "consented_at")
    list_filter = ("study", "is_staff")
    readonly_fields = [f.name for f in Rater._meta.fields]

    def has_add_permission(self, request):
        return False


class RevisionInline(admin.TabularInline):
    model = AnswerRevision
    extra = 0
    fields = ("rank", "tied", "quality", "replaced_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Answer)
class AnswerAdmin(ReadOnlyAdmin):
    list_display = ("pk", "study", "rater", "item", "source", "panel_position", "rank", "tied", "quality", "edits",
                    "updated_at")
    list_filter = ("assignment__study", "candidate__producer__kind", "quality")
    list_select_related = ("assignment__study", "assignment__rater", "assignment__item__galaxy",
                           "candidate__producer")
    inlines = [RevisionInline]

    @admin.display(description="study")
    def study(self, a):
        return a.assignment.study

    @admin.display(description="rater")
    def rater(self, a):
        return a.assignment.rater.pseudonym if a.assignment.rater else "-"

    @admin.display(description="item")
    def item(self, a):
        return a.assignment.item

    @admin.display(description="source")
    def source(self, a):
        return a.candidate.producer


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ("pk", "study", "slot", "rater", "item", "position", "panel_order", "seconds_spent",
                    "flagged_bad_image", "submitted_at")
    list_filter = ("study", "item__kind", "flagged_bad_image")
    list_select_related = ("study", "rater", "item__galaxy")
    exclude = ("token",)


@admin.register(BlindingGuess)
class BlindingGuessAdmin(ReadOnlyAdmin):
    list_display = ("rater", "candidate_source", "guessed_kind", "answered_at")
    list_filter = ("rater__study", "guessed_kind")
    exclude = ("token",)

    @admin.display(description="real source")
    def candidate_source(self, g):
        return g.candidate.producer
