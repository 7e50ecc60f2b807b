"""Admin for studies: design, galaxy selection, the pre-opening check, open/close, invitations, log.

Raters' answers are visible here to staff only (read-only); the outcome figures live on the study's
results page (evalcore/study/stats), shown once the study is closed or an admin unlocks them.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from evalcore import vocabulary
from evalsite.staff import ReadOnlyAdmin
from ratings.jobs import study_render_enqueue
from ratings.models import Answer, AnswerRevision, Assignment, BlindingGuess, Invitation, Rater, Study, StudyLog
from ratings.selectors.studies import invitation_url, items_plan, study_galaxies
from ratings.services import blinding_audit
from ratings.services.answers import form_number
from ratings.services.raters import invitations_create
from ratings.services.studies import (
    StudyError,
    study_acknowledge_shortfall,
    study_check,
    study_choose_galaxies,
    study_close,
    study_design_problems,
    study_open,
)
from segmentation.models import Galaxy, Producer, Structure


class SelectionForm(forms.Form):
    MODES = [("sample", "A seeded random sample of N galaxies"), ("names", "An explicit list of names"),
             ("filter", "Every galaxy matching the filter")]
    mode = forms.ChoiceField(choices=MODES)
    n = forms.IntegerField(min_value=1, required=False, help_text="For a sample.")
    seed = forms.IntegerField(initial=0, required=False)
    names = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="One per line.")
    synthetic = forms.ChoiceField(choices=[("any", "synthetic and real"), ("only", "synthetic only"),
                                           ("exclude", "real only")], initial="any")
    test_split_only = forms.BooleanField(
        required=False, initial=True,
        help_text="Only galaxies of the held-out test split (the compared model version's, when the study names "
                  "one). This can leave fewer galaxies than asked for: the page after choosing says so.")


def selected_galaxies(data: dict, study: Study) -> tuple[list[Galaxy], dict]:
    """The galaxies the selection form asks for (ratings.selectors.study_galaxies, as the commands use)."""
    return study_galaxies(
        study, mode=data["mode"], n=data.get("n"), seed=data.get("seed") or 0,
        names=(data.get("names") or "").splitlines(), synthetic=data["synthetic"],
        split="test" if data.get("test_split_only") else None)


class SourcesField(forms.ModelMultipleChoiceField):
    """Sources as checkboxes labelled with their names (kind: name version), never their ids."""

    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, producer):
        return str(producer)


def _display_label(value: str) -> str:
    return dict(Study.Display.choices).get(value, value)


class StudyForm(forms.ModelForm):
    """Structures and sources as named checkboxes; display overrides chosen by source name. The ground truth
    is offered as a source only in a calibration study."""

    structures = forms.MultipleChoiceField(choices=Structure.choices, widget=forms.CheckboxSelectMultiple)
    sources = SourcesField(queryset=Producer.objects.none())

    class Meta:
        model = Study
        fields = ("name", "instructions", "consent_text", "structures", "calibration", "sources", "display",
                  "threshold", "raters_per_item", "repeat_rate", "attention_rate", "practice_items", "seed",
                  "test_split_of", "training_override", "training_override_reason", "primary_question",
                  "planned_items", "planned_raters", "stopping_rule")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        calibration = bool(self.instance.pk and self.instance.calibration) or \
            (self.data.get("calibration") in ("on", "true", "True", "1") if self.is_bound else False)
        producers = Producer.objects.order_by("kind", "name", "version")
        if not calibration:
            producers = producers.exclude(kind=vocabulary.TRUTH)
        if "sources" in self.fields:  # not when the study is open: then it is read-only
            self.fields["sources"].queryset = producers
        if not calibration and "sources" in self.fields:
            self.fields["sources"].help_text = ("The ground truth is offered only in a calibration study "
                                                "(tick \u201ccalibration\u201d and save first).")
        overrides = self.instance.display_overrides if self.instance.pk else {}
        for value in Study.Display.values:
            name = f"display_as_{value}"
            if name in self.fields:
                self.fields[name].queryset = producers
                self.fields[name].initial = [int(pk) for pk, style in overrides.items()
                                             if style == value and str(pk).isdigit()]

    def clean(self):
        data = super().clean()
        chosen = set(data.get("sources") or [])
        overrides, seen = {}, {}
        for value, _label in Study.Display.choices:
            for producer in data.get(f"display_as_{value}") or []:
                if producer in seen:
                    self.add_error(f"display_as_{value}", f"{producer} is already shown as "
                                   f"{_display_label(seen[producer]).lower()}; choose one display per source")
                    continue
                if producer not in chosen:
                    self.add_error(f"display_as_{value}", f"{producer} is not one of the study's sources")
                    continue
                seen[producer] = value
                overrides[str(producer.pk)] = value
        if self.instance.state == Study.State.DRAFT and "sources" in self.fields:
            self.instance.display_overrides = overrides  # not a form field: set here, saved with the study
        problems = study_design_problems(structures=data.get("structures") or [],
                                                  sources=list(chosen), calibration=bool(data.get("calibration")))
        for p in problems:
            if "ground truth" in p:
                self.add_error("sources", p)
        return data


for _value, _label in Study.Display.choices:
    StudyForm.base_fields[f"display_as_{_value}"] = SourcesField(
        queryset=Producer.objects.none(), required=False, label=f"Always shown as: {_label.lower()}",
        help_text="Sources shown this way whatever the study's display, set deliberately (recorded with the "
                  "pre-registration).")
    StudyForm.declared_fields[f"display_as_{_value}"] = StudyForm.base_fields[f"display_as_{_value}"]


class InvitationInline(admin.TabularInline):
    model = Invitation
    extra = 0
    fields = ("token_link", "note", "max_uses", "uses")
    readonly_fields = ("token_link", "uses")

    @admin.display(description="link")
    def token_link(self, inv):
        if not inv.pk:
            return "(saved with the study)"
        url = invitation_url(inv)
        return format_html('<code class="invitation-url">{}</code> <button type="button" class="button copy-link" '
                           'data-url="{}" title="Copy the link">Copy</button>', url, url)


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    def view_on_site(self, obj):
        """The study's staff dashboard (progress, and results once closed or unlocked)."""
        return reverse("ratings_staff:dashboard", args=[obj.pk])

    form = StudyForm
    list_display = ("name", "state", "n_items", "n_raters", "n_answers", "created_at")
    list_filter = ("state",)
    inlines = [InvitationInline]
    change_form_template = "admin/ratings/study/change_form.html"
    readonly_fields = ("state", "opened_at", "closed_at", "results_unlocked_at")

    def get_fieldsets(self, request, obj=None):
        overrides = [f"display_as_{v}" for v in Study.Display.values]
        if obj is not None and obj.state != Study.State.DRAFT:
            overrides = ["display_overrides_named"]
        return [
            (None, {"fields": ("name", "instructions", "consent_text", "structures", "calibration", "sources")}),
            ("Display", {"fields": ("display", "threshold", *overrides)}),
            ("Design", {"fields": ("raters_per_item", "repeat_rate", "attention_rate", "practice_items", "seed",
                                   "test_split_of", "training_override", "training_override_reason")}),
            ("Pre-registration (frozen when the study opens)", {"fields": ("primary_question", "planned_items",
                                                                           "planned_raters", "stopping_rule")}),
            ("State", {"fields": ("state", "opened_at", "closed_at", "results_unlocked_at")}),
        ]

    @admin.display(description="display overrides")
    def display_overrides_named(self, s):
        names = {str(p.pk): str(p) for p in s.sources.all()}
        return "; ".join(f"{names.get(pk, pk)}: {_display_label(style).lower()}"
                         for pk, style in s.display_overrides.items()) or "none"

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
                    "test_split_of", "sources", "display_overrides_named"]
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
            path("<path:object_id>/accept-shortfall/", self.admin_site.admin_view(require_POST(self.shortfall_view)),
                 name="ratings_study_accept_shortfall"),
            path("<path:object_id>/invite/", self.admin_site.admin_view(require_POST(self.invite_view)),
                 name="ratings_study_invite"),
            *super().get_urls(),
        ]

    def _study(self, object_id) -> Study:
        study = Study.objects.filter(pk=unquote(object_id)).first()
        if study is None:
            raise Http404("no such study")
        return study

    def _back(self, study):
        return HttpResponseRedirect(reverse("admin:ratings_study_change", args=[study.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        study = self._study(object_id)
        check = study_check(study=study) if study.state == Study.State.DRAFT else None
        extra = {"check": check, "plan": items_plan(study),
                 "log": StudyLog.objects.filter(study=study)[:50], "study": study,
                 "audit_lines": blinding_audit.report_lines(check.blinding) if check and check.blinding else [],
                 "level_lines": blinding_audit.level_lines(check.levels, study.structures) if check else []}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def select_view(self, request, object_id):
        study = self._study(object_id)
        form = SelectionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                galaxies, record = selected_galaxies(form.cleaned_data, study)
                n = study_choose_galaxies(study=study, galaxies=galaxies, selection=record,
                                                   user=request.user)
                plan = items_plan(study)
                asked = f" ({record['asked']} asked for, {record['available']} available)" \
                    if record.get("asked") and record["asked"] > len(galaxies) else ""
                text = f"{n} items from {len(galaxies)} galaxies{asked}"
                if plan["shortfall"]:
                    messages.warning(request, f"{text}: {plan['shortfall']} fewer than the {plan['planned']} planned. "
                                              f"Choose again, or accept the shortfall before opening. {n.message}")
                else:
                    messages.success(request, f"{text}. {n.message}".strip())
                return self._back(study)
            except (ValueError, StudyError) as exc:
                form.add_error(None, str(exc))
        context = {**self.admin_site.each_context(request), "opts": Study._meta, "form": form,
                   "title": f"Choose galaxies for {study}", "study": study, "plan": items_plan(study)}
        return TemplateResponse(request, "admin/ratings/study/select.html", context)

    def open_view(self, request, object_id):
        study = self._study(object_id)
        try:
            study_open(study=study, user=request.user,
                                override_reason=request.POST.get("override_reason", "").strip())
            job = study_render_enqueue(study=study)
            messages.success(request, f"{study} is open: {Assignment.objects.filter(study=study).count()} "
                                      f"assignments generated; its panels are being rendered (job {job}).")
        except StudyError as exc:
            messages.error(request, f"Not opened: {exc}")
        return self._back(study)

    def close_view(self, request, object_id):
        study = self._study(object_id)
        try:
            study_close(study=study, user=request.user)
            messages.success(request, f"{study} is closed.")
        except StudyError as exc:
            messages.error(request, str(exc))
        return self._back(study)

    def shortfall_view(self, request, object_id):
        study = self._study(object_id)
        try:
            study_acknowledge_shortfall(study=study, user=request.user)
            messages.success(request, f"Accepted: {study.shortfall_acknowledged} items instead of the "
                                      f"{study.planned_items} planned.")
        except StudyError as exc:
            messages.error(request, str(exc))
        return self._back(study)

    def invite_view(self, request, object_id):
        study = self._study(object_id)
        n = form_number(request.POST.get("n", ""))
        max_uses = form_number(request.POST.get("max_uses", "1"))
        try:
            made = invitations_create(study=study, n=n if n is not None else 0,
                                               max_uses=max_uses if max_uses is not None else 0,
                                               note=request.POST.get("note", "")[:200], user=request.user)
            messages.success(request, f"{len(made)} invitation link{'s' if len(made) != 1 else ''} made: "
                                      "copy them from the list below.")
        except StudyError as exc:
            messages.error(request, f"No invitation made: {exc}")
        return self._back(study)


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
