"""Admin for background work: training runs, model versions and mask-generation runs.

Staff start work from forms here (the services enqueue RQ jobs), watch a live status block that the
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
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from segmentation.models import GenerationRun, Image, ModelVersion, RunStatus, TrainingRun
from segmentation.selectors.galaxies import GalaxySelection, selected_queryset
from segmentation.services import generation, training

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
    """Status polling, cancel and resume for run admins; subclasses say which services to call."""

    status_template: str
    services = None

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
        return HttpResponseRedirect(reverse(f"admin:segmentation_{self.model._meta.model_name}_change", args=[run.pk]))

    def resume_view(self, request, object_id):
        run = self._run(object_id)
        try:
            result = self.services.run_resume(run=run)
            messages.success(
                request, f"{run} queued to resume ({result if isinstance(result, int) else 'from checkpoint'})."
            )
        except ValueError as exc:
            messages.error(request, str(exc))
        return HttpResponseRedirect(reverse(f"admin:segmentation_{self.model._meta.model_name}_change", args=[run.pk]))

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
                run = training.training_start(config=config, selection=selection, requested_by=request.user.username)
            except (TypeError, ValueError) as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{run} queued on the training queue.")
                return HttpResponseRedirect(reverse("admin:segmentation_trainingrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": "Start training",
        }
        return TemplateResponse(request, "admin/segmentation/runs/start_form.html", context)


class GenerationForm(forms.Form):
    source = forms.ChoiceField(choices=GenerationRun.Source.choices)
    model_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.all(),
        required=False,
        help_text="For the model source; empty = the active version.",
    )
    galaxies = forms.ChoiceField(
        choices=[("any", "all galaxies"), ("only", "synthetic only"), ("exclude", "real only")]
    )
    split = forms.ChoiceField(
        choices=[("", "all splits"), ("train", "train"), ("val", "val"), ("test", "test")], required=False,
        help_text="Only the galaxies of this split (the sky-cell split training uses and records per model version).",
    )
    names = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: only these galaxy names, one per line.",
    )
    image_kind = forms.ChoiceField(choices=Image.Kind.choices, initial=Image.Kind.SURVEY_CUTOUT)
    chunk_size = forms.IntegerField(min_value=1, max_value=10_000, initial=generation.DEFAULT_CHUNK_SIZE)


@admin.register(GenerationRun)
class GenerationRunAdmin(RunAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "badge", "producer", "progress_text", "created_at", "requested_by")
    list_filter = ("status", "source")
    page_template = "admin/segmentation/runs/generation_run.html"
    status_template = "admin/segmentation/runs/generation_status.html"
    services = generation

    @admin.display(description="status")
    def badge(self, run):
        return status_badge(run)

    @admin.display(description="progress")
    def progress_text(self, run):
        p = generation.run_progress(run=run)
        return f"{p['processed']}/{p['total']} ({p['failed']} failed)"

    def status_context(self, run):
        run.refresh_from_db()
        p = generation.run_progress(run=run)
        failures = [f for c in run.chunks.exclude(failures=[]) for f in c.failures][:200]
        return {
            "run": run,
            "status": status_badge(run),
            "progress": p,
            "percent": round(100 * p["processed"] / p["total"]) if p["total"] else 100,
            "failures": failures,
            "can_cancel": run.status in (RunStatus.QUEUED, RunStatus.RUNNING) and not run.cancel_requested,
            "can_resume": run.status in (RunStatus.FAILED, RunStatus.CANCELLED) or run.is_stalled,
        }

    def add_view(self, request, form_url="", extra_context=None):
        form = GenerationForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            names = [n.strip() for n in d["names"].splitlines() if n.strip()]
            version = d["model_version"] or ModelVersion.objects.filter(is_active=True).first()
            try:
                selection = GalaxySelection(synthetic=d["galaxies"], names=tuple(names), split=d["split"] or None)
                ids = list(selected_queryset(selection).values_list("pk", flat=True))
                if d["source"] == "model" and version is None:
                    raise ValueError("no model version: train one first, or choose one")
                run = generation.generation_start(
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
                messages.success(request, f"{run}: {run.total} galaxies in {run.chunks.count()} chunks queued.")
                return HttpResponseRedirect(reverse("admin:segmentation_generationrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": "Generate masks",
        }
        return TemplateResponse(request, "admin/segmentation/runs/start_form.html", context)


class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "created_at", "training_run", "best_val")
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["activate"]

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
        training.model_version_activate(version=queryset.get())
        self.message_user(request, f"{queryset.get().name} is now active.")
