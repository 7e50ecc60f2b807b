"""Admin for background work: training runs, model versions, mask-generation and measurement runs.

Staff start work from forms here (``segmentation.jobs`` queues its RQ jobs), watch a live status block that the
page polls every few seconds, and cancel or resume. Status comes from the run rows, which outlive RQ.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from evalcore.vocabulary import SPLITS
from segmentation import jobs
from segmentation.models import (
    GenerationRun,
    Image,
    MaskMeasurement,
    MeasurementRun,
    ModelVersion,
    Producer,
    RunStatus,
    TrainingRun,
)
from segmentation.selectors.galaxies import GalaxySelection, selected_queryset
from segmentation.services import generation, measurement_runs, quality_gate, training

STATUS_COLOURS = {
    "queued": "#6b7280",
    "running": "#0369a1",
    "succeeded": "#15803d",
    "failed": "#b91c1c",
    "cancelled": "#92400e",
}


def status_badge(run) -> str:
    status = "stalled" if run.is_stalled else run.status
    colour = "#b45309" if status == "stalled" else STATUS_COLOURS.get(status, "#374151")
    return format_html('<b style="color:{}">{}</b>', colour, status)


def loss_curve_svg(history: list[dict], width: int = 520, height: int = 200) -> str:
    """Training and validation loss per epoch as an inline SVG (no JavaScript library needed)."""
    if not history:
        return ""
    pad = 36
    epochs = [h["epoch"] for h in history]
    series = {"train": [h["train_loss"] for h in history], "validation": [h["val_loss"] for h in history]}
    values = [v for vs in series.values() for v in vs if v == v]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1e-6
    x0, x1 = min(epochs), max(max(epochs), min(epochs) + 1)

    def xy(e, v):
        return (
            pad + (e - x0) / (x1 - x0) * (width - 2 * pad),
            height - pad - (v - lo) / (hi - lo) * (height - 2 * pad),
        )

    colours = {"train": "#0072b2", "validation": "#d55e00"}  # Okabe-Ito: colour-blind safe
    parts = [
        f'<svg class="sg-loss" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="loss per epoch">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>',
        f'<text x="{pad}" y="{pad - 8}" font-size="11">{hi:.4f}</text>',
        f'<text x="{pad}" y="{height - pad + 14}" font-size="11">{lo:.4f} · epoch {x0}</text>',
        f'<text x="{width - pad}" y="{height - pad + 14}" font-size="11" text-anchor="end">epoch {x1}</text>',
    ]
    for i, (name, vs) in enumerate(series.items()):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(e, v) for e, v in zip(epochs, vs) if v == v))
        parts.append(f'<polyline fill="none" stroke="{colours[name]}" stroke-width="2" points="{pts}"/>')
        parts.append(
            f'<text x="{width - pad}" y="{pad + 14 * i}" font-size="11" text-anchor="end" '
            f'fill="{colours[name]}">{name}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def fmt_seconds(s) -> str:
    if s is None:
        return "—"
    s = int(s)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


class RunAdminMixin:
    """Status polling, cancel and resume for run admins; subclasses say which services to call and how a run
    is queued again (``resume``, from ``segmentation.jobs``)."""

    status_template: str
    services = None
    resume = None

    def has_add_permission(self, request):
        return request.user.is_staff

    def has_change_permission(self, request, obj=None):
        return request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path(
                "<path:object_id>/status/",
                self.admin_site.admin_view(self.status_view),
                name="{}_{}_status".format(*info),
            ),
            path(
                "<path:object_id>/cancel/",
                self.admin_site.admin_view(require_POST(self.cancel_view)),
                name="{}_{}_cancel".format(*info),
            ),
            path(
                "<path:object_id>/resume/",
                self.admin_site.admin_view(require_POST(self.resume_view)),
                name="{}_{}_resume".format(*info),
            ),
            *super().get_urls(),
        ]

    def start_page(self, request, form, title: str):
        """The page of a start form (training, generation, measurement)."""
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form, "title": title}
        return TemplateResponse(request, "admin/segmentation/runs/start_form.html", context)

    def started(self, request, run, message: str):
        """After a run was queued: say so and show its page."""
        messages.success(request, message)
        return HttpResponseRedirect(self._change_url(run))

    def _change_url(self, run) -> str:
        return reverse(f"admin:segmentation_{self.model._meta.model_name}_change", args=[run.pk])

    def _run(self, object_id):
        run = self.model.objects.filter(pk=unquote(object_id)).first()
        if run is None:
            raise Http404("no such run")
        return run

    def status_view(self, request, object_id):
        run = self._run(object_id)
        return render(request, self.status_template, self.status_context(run))

    def cancel_view(self, request, object_id):
        run = self._run(object_id)
        self.services.run_cancel(run=run)
        messages.info(request, f"Cancellation of {run} requested.")
        return HttpResponseRedirect(self._change_url(run))

    def resume_view(self, request, object_id):
        run = self._run(object_id)
        try:
            result = self.resume(run=run)
            messages.success(
                request, f"{run} queued to resume ({result if isinstance(result, int) else 'from checkpoint'})."
            )
        except ValueError as exc:
            messages.error(request, str(exc))
        return HttpResponseRedirect(self._change_url(run))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self._run(object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "run": run,
            "title": str(run),
            **self.status_context(run),
        }
        return TemplateResponse(request, self.page_template, context)


class TrainingForm(forms.Form):
    encoder = forms.ChoiceField(choices=[(e, e) for e in ("resnet18", "resnet34", "efficientnet-b0", "mobilenet_v2")])
    image_size = forms.TypedChoiceField(
        coerce=int, choices=[(s, f"{s} px") for s in (64, 96, 128, 160, 192, 224, 256)], initial=192
    )
    field_of_view = forms.FloatField(
        min_value=0.05, max_value=1.0, initial=1.0,  # UNetConfig.field_of_view (not imported: see loss below)
        help_text="Fraction of each image's side the network sees, centred; masks are 0 outside it.",
    )
    epochs = forms.IntegerField(min_value=1, max_value=1000, initial=30)
    batch_size = forms.IntegerField(min_value=1, max_value=1024, initial=16)
    learning_rate = forms.FloatField(min_value=1e-6, max_value=1.0, initial=1e-3)
    loss = forms.ChoiceField(
        choices=[("bce", "BCE on soft targets"), ("l1", "L1 (the study's choice)"), ("mse", "MSE")],
        initial="bce",  # UNetConfig.loss (not imported here: it would load torch into every web process)
        help_text="BCE by default: with L1 the bar channel stopped learning (docs/unet.md).",
    )
    galaxies = forms.ChoiceField(
        choices=[("any", "all labelled galaxies"), ("only", "synthetic only"), ("exclude", "real only")]
    )
    image_kind = forms.ChoiceField(
        choices=Image.Kind.choices,
        initial=Image.Kind.SURVEY_CUTOUT,
        help_text="The model learns from this image of each galaxy (survey cutouts: no drawn hexagon).",
    )
    limit = forms.IntegerField(min_value=1, required=False, help_text="At most this many galaxies (quick trials).")


@admin.register(TrainingRun)
class TrainingRunAdmin(RunAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "badge", "epoch", "last_val_loss", "created_at", "requested_by")
    list_filter = ("status",)
    page_template = "admin/segmentation/runs/training_run.html"
    status_template = "admin/segmentation/runs/training_status.html"
    services = training
    resume = staticmethod(jobs.training_resume)

    @admin.display(description="status")
    def badge(self, run):
        return status_badge(run)

    @admin.display(description="epoch")
    def epoch(self, run):
        return f"{run.current_epoch}/{run.total_epochs}"

    @admin.display(description="validation loss")
    def last_val_loss(self, run):
        return f"{run.history[-1]['val_loss']:.4f}" if run.history else "—"

    def status_context(self, run):
        run.refresh_from_db()
        return {
            "run": run,
            "status": status_badge(run),
            "loss_svg": loss_curve_svg(run.history),
            "elapsed": fmt_seconds(run.timings.get("elapsed_s")),
            "eta": fmt_seconds(run.timings.get("eta_s")),
            "images_per_s": run.timings.get("images_per_s"),
            "versions": run.modelversion_set.all(),
            "log_tail": "\n".join(run.log.splitlines()[-15:]),
            "can_cancel": run.status in (RunStatus.QUEUED, RunStatus.RUNNING) and not run.cancel_requested,
            "can_resume": run.status in (RunStatus.FAILED, RunStatus.CANCELLED) or run.is_stalled,
        }

    def add_view(self, request, form_url="", extra_context=None):
        form = TrainingForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            selection = {
                "image_kind": d["image_kind"],
                "synthetic": {"only": True, "exclude": False}.get(d["galaxies"]),
            }
            if d["limit"]:
                selection["limit"] = d["limit"]
            config = {k: d[k] for k in ("encoder", "image_size", "field_of_view", "epochs", "batch_size",
                                        "learning_rate", "loss")}
            try:
                run = jobs.training_launch(config=config, selection=selection, requested_by=request.user.username)
            except (TypeError, ValueError) as exc:
                form.add_error(None, str(exc))
            else:
                return self.started(request, run, f"{run} queued on the training queue.")
        return self.start_page(request, form, "Start training")


class GalaxySelectionForm(forms.Form):
    """The galaxy selection every start form shares (``selectors.galaxies.GalaxySelection``)."""

    galaxies = forms.ChoiceField(
        choices=[("any", "all galaxies"), ("only", "synthetic only"), ("exclude", "real only")]
    )
    split = forms.ChoiceField(
        choices=[("", "all splits"), *((s, s) for s in SPLITS)], required=False,
        help_text="Only the galaxies of this split (the sky-cell split training uses and records per model version).",
    )
    names = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: only these galaxy names, one per line.",
    )

    def names_list(self) -> list[str]:
        return [n.strip() for n in self.cleaned_data["names"].splitlines() if n.strip()]


class GenerationForm(GalaxySelectionForm):
    field_order = ["source", "model_version", "galaxies", "split", "names"]
    source = forms.ChoiceField(choices=GenerationRun.Source.choices)
    model_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.all(),
        required=False,
        help_text="For the model source; empty = the active version.",
    )
    image_kind = forms.ChoiceField(choices=Image.Kind.choices, initial=Image.Kind.SURVEY_CUTOUT)
    chunk_size = forms.IntegerField(min_value=1, max_value=10_000, initial=generation.DEFAULT_CHUNK_SIZE)
    allow_ungated = forms.BooleanField(
        required=False, label="Use a version that has not passed the quality gate",
        help_text="Model masks come only from versions that passed the quality gate unless this is ticked.",
    )


class ChunkedRunAdminMixin(RunAdminMixin):
    """List columns and the live status block of a chunked run (generation, measurement)."""

    status_template = "admin/segmentation/runs/chunked_status.html"
    item_label = "galaxies"  # what the run's chunks hold, as the status block says it

    @admin.display(description="status")
    def badge(self, run):
        return status_badge(run)

    @admin.display(description="progress")
    def progress_text(self, run):
        p = self.services.run_progress(run=run)
        return f"{p['processed']}/{p['total']} ({p['failed']} failed)"

    def status_context(self, run):
        run.refresh_from_db()
        p = self.services.run_progress(run=run)
        failures = [f for c in run.chunks.exclude(failures=[]) for f in c.failures][:200]
        name = self.model._meta.model_name
        return {
            "run": run,
            "status": status_badge(run),
            "progress": p,
            "percent": round(100 * p["processed"] / p["total"]) if p["total"] else 100,
            "failures": failures,
            "item_label": self.item_label,
            "cancel_url": reverse(f"admin:segmentation_{name}_cancel", args=[run.pk]),
            "resume_url": reverse(f"admin:segmentation_{name}_resume", args=[run.pk]),
            "can_cancel": run.status in (RunStatus.QUEUED, RunStatus.RUNNING) and not run.cancel_requested,
            "can_resume": run.status in (RunStatus.FAILED, RunStatus.CANCELLED) or run.is_stalled,
        }


@admin.register(GenerationRun)
class GenerationRunAdmin(ChunkedRunAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "badge", "producer", "progress_text", "created_at", "requested_by")
    list_filter = ("status", "source")
    page_template = "admin/segmentation/runs/generation_run.html"
    services = generation
    resume = staticmethod(jobs.generation_resume)

    def add_view(self, request, form_url="", extra_context=None):
        form = GenerationForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            names = form.names_list()
            version = d["model_version"] or ModelVersion.objects.filter(is_active=True).first()
            try:
                selection = GalaxySelection(synthetic=d["galaxies"], names=tuple(names), split=d["split"] or None)
                ids = list(selected_queryset(selection).values_list("pk", flat=True))
                if d["source"] == "model" and version is None:
                    raise ValueError("no model version: train one first, or choose one")
                if d["source"] == "model" and not quality_gate.passed(version) and not d["allow_ungated"]:
                    raise ValueError(f"model version {version.name} {quality_gate.summary(version)}. Nothing "
                                     "generated: tick the box below to use it anyway.")
                run = jobs.generation_launch(
                    source=d["source"],
                    galaxies=ids,
                    model_version=version if d["source"] == "model" else None,
                    image_kind=d["image_kind"],
                    chunk_size=d["chunk_size"],
                    selection={"galaxies": d["galaxies"], "names": names, "split": d["split"] or None},
                    requested_by=request.user.username,
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                return self.started(request, run, f"{run}: {run.total} galaxies in {run.chunks.count()} chunks queued.")
        return self.start_page(request, form, "Generate masks")


class MeasurementForm(GalaxySelectionForm):
    """The selection of ``manage.py measure_masks``: which current masks to measure."""

    field_order = ["source", "structure", "galaxies", "split", "names"]

    source = forms.ChoiceField(choices=[("", "all sources"), *Producer.Kind.choices], required=False,
                               help_text="Only masks of this source.")
    structure = forms.ChoiceField(choices=[("", "bars and spirals"), *MaskMeasurement.Kind.choices],
                                  required=False)
    image_kind = forms.ChoiceField(choices=[("", "any image"), *Image.Kind.choices], required=False,
                                   help_text="Only masks drawn on this kind of image.")
    chunk_size = forms.IntegerField(min_value=1, max_value=100_000, initial=measurement_runs.DEFAULT_CHUNK_SIZE,
                                    help_text="Masks per job; the workers share the chunks.")


@admin.register(MeasurementRun)
class MeasurementRunAdmin(ChunkedRunAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "badge", "selection_text", "progress_text", "created_at", "requested_by")
    list_filter = ("status",)
    page_template = "admin/segmentation/runs/measurement_run.html"
    services = measurement_runs
    resume = staticmethod(jobs.measurement_resume)
    item_label = "masks"

    @admin.display(description="selection")
    def selection_text(self, run):
        return selection_text(run.selection)

    def status_context(self, run):
        return {**super().status_context(run), "selection": selection_text(run.selection)}

    def add_view(self, request, form_url="", extra_context=None):
        form = MeasurementForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            names = form.names_list()
            try:
                run = jobs.measurement_launch(
                    source=d["source"] or None, structure=d["structure"] or None, synthetic=d["galaxies"],
                    names=names or None, split=d["split"] or None, image_kind=d["image_kind"] or None,
                    chunk_size=d["chunk_size"], requested_by=request.user.username,
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                return self.started(request, run, f"{run}: {run.total} masks in {run.chunks.count()} chunks queued.")
        return self.start_page(request, form, "Measure masks")


def selection_text(selection: dict) -> str:
    """A measurement run's selection in words, e.g. "model spiral masks, synthetic only, split test"."""
    s = selection or {}
    what = " ".join(x for x in (s.get("source"), s.get("structure")) if x) or "all"
    parts = [f"{what} masks"]
    if s.get("synthetic") in ("only", "exclude"):
        parts.append("synthetic only" if s["synthetic"] == "only" else "real only")
    if s.get("split"):
        parts.append(f"split {s['split']}")
    if s.get("image_kind"):
        parts.append(f"on {s['image_kind']}")
    if s.get("names"):
        parts.append(f"{len(s['names'])} named galaxies")
    return ", ".join(parts)


class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "gate_status", "created_at", "training_run", "best_val")
    readonly_fields = ["quality_gate", *[f.name for f in ModelVersion._meta.fields]]
    actions = ["activate", "activate_despite_gate", "evaluate_and_gate"]

    @admin.display(description="quality gate")
    def gate_status(self, version):
        gate = quality_gate.gate_of(version)
        status = (gate or {}).get("status", "not checked")
        title = quality_gate.summary(version)
        return format_html('<span class="sg-gate sg-gate-{}" title="{}">{}</span>', status, title, status)

    @admin.display(description="quality gate")
    def quality_gate(self, version):
        gate = quality_gate.gate_of(version) or {}
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((c["name"], "—" if c["value"] is None else f"{c['value']:.3f}",
              "—" if c["floor"] is None else (f"{c['floor']:.3f}" if isinstance(c["floor"], float) else c["floor"]),
              {True: "pass", False: "FAIL", None: "undecided"}[c["passed"]]) for c in gate.get("checks", [])))
        table = format_html('<table class="sg-gate-checks"><tr><th>check</th><th>value</th><th>floor</th>'
                            '<th>outcome</th></tr>{}</table>', rows) if gate else ""
        return format_html('<p class="sg-gate-summary">{}</p>{}', quality_gate.summary(version), table)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="best validation loss")
    def best_val(self, version):
        v = version.metrics.get("best_val_loss")
        return f"{v:.4f}" if isinstance(v, float) else "—"

    @admin.action(description="Make the selected version the active one")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one version.", messages.ERROR)
            return
        try:
            training.model_version_activate(version=queryset.get())
        except quality_gate.GateNotPassed as exc:
            self.message_user(request, f"Not activated: {exc}. Use \"Make active despite the quality gate\" "
                                       "to override.", messages.ERROR)
            return
        self.message_user(request, f"{queryset.get().name} is now active.")

    @admin.action(description="Make the selected version active despite the quality gate (override)")
    def activate_despite_gate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one version.", messages.ERROR)
            return
        version = queryset.get()
        training.model_version_activate(version=version, override_gate=True, by=request.user.username)
        self.message_user(request, f"{version.name} is now active; {quality_gate.summary(version)}",
                          messages.WARNING if not quality_gate.passed(version) else messages.SUCCESS)

    @admin.action(description="Evaluate the selected versions and check the quality gate")
    def evaluate_and_gate(self, request, queryset):
        for version in queryset[:3]:  # each evaluation predicts its val and test galaxies: keep it short
            quality_gate.evaluate_and_gate(version=version, n_boot=500)
            self.message_user(request, f"{version.name} {quality_gate.summary(version)}",
                              messages.SUCCESS if quality_gate.passed(version) else messages.WARNING)
