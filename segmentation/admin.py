"""Admin for galaxies, images, masks, producers, import batches and volunteer drawings.

Everything here is read-only: rows come from importers, generators and services, masks are immutable,
and deleting a galaxy or image would take masks (and the ratings on them) with it. Synthetic data carry a
visible badge everywhere. The galaxy page embeds the viewer (image + mask overlays + provenance) built
by ``segmentation.selectors.galaxy_page.galaxy_viewer_context``.
"""
from __future__ import annotations

import json

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.db.models import Count, Exists, OuterRef, Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from evalsite.staff import ReadOnlyAdmin
from segmentation.models import Galaxy, Image, ImportBatch, Mask, Producer, Structure, VolunteerClassification
from segmentation.selectors.galaxy_page import PRODUCER_ORDER, galaxy_viewer_context
from segmentation.services.masks import galaxy_mask_counts_fill

KIND_ABBREVIATIONS = {"volunteers": "vol", "model": "model", "sparcfire": "arcs", "truth": "truth"}
STATE_SYMBOLS = {"marked": "●", "empty": "∅", "not_asked": "?"}
GALAXY_SEARCH = ("name", "manga_id", "iau_name", "=nsa_id", "sdss_objid")


def synthetic_badge(synthetic: bool):
    if synthetic:
        return mark_safe('<span class="sg-badge sg-synthetic" title="Made by the synthetic survey, '
                         'not observed">synthetic</span>')
    return mark_safe('<span class="sg-badge sg-real">real</span>')


def state_badge(state: str, label: str):
    return format_html('<span class="sg-state sg-state-{}">{} {}</span>', state, STATE_SYMBOLS[state], label)


def pretty_json(value) -> str:
    if value in (None, {}, []):
        return "—"
    return format_html('<pre class="sg-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True, default=str))


def admin_link(obj, text=None):
    if obj is None:
        return "—"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text or str(obj))


def galaxy_search_fields(prefix: str = "") -> tuple[str, ...]:
    return tuple(f"={prefix}{f[1:]}" if f.startswith("=") else f"{prefix}{f}" for f in GALAXY_SEARCH)


def origin_filter(field_path: str):
    """A 'synthetic or real' list filter on a boolean ``synthetic`` field reached by ``field_path``."""

    class OriginFilter(admin.SimpleListFilter):
        title = "origin"
        parameter_name = "origin"

        def lookups(self, request, model_admin):
            return [("synthetic", "Synthetic"), ("real", "Real")]

        def queryset(self, request, queryset):
            if self.value() in ("synthetic", "real"):
                return queryset.filter(**{field_path: self.value() == "synthetic"})
            return queryset

    return OriginFilter


class StructureLabelFilter(admin.SimpleListFilter):
    """Which current masks a galaxy has for one structure: marked (by any or by a producer kind),
    asked with nothing marked, not asked, or no marked mask at all."""

    structure: str

    def lookups(self, request, model_admin):
        out = [("marked", "Marked (any producer)")]
        out += [(f"marked:{kind}", f"Marked by {label.lower()}") for kind, label in Producer.Kind.choices]
        out += [("empty", "Asked, nothing marked"), ("not_asked", "Not asked"), ("none", "No marked mask")]
        return out

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        current = Mask.objects.filter(galaxy=OuterRef("pk"), is_current=True, structure=self.structure)
        if value == "marked":
            return queryset.filter(Exists(current.filter(state=Mask.State.MARKED)))
        if value.startswith("marked:") and value[7:] in PRODUCER_ORDER:
            return queryset.filter(Exists(current.filter(state=Mask.State.MARKED, producer__kind=value[7:])))
        if value in ("empty", "not_asked"):
            return queryset.filter(Exists(current.filter(state=value)))
        if value == "none":
            return queryset.exclude(Exists(current.filter(state=Mask.State.MARKED)))
        raise IncorrectLookupParameters(f"unknown {self.parameter_name} filter {value!r}")


class SpiralLabelFilter(StructureLabelFilter):
    title = "spiral arms labelled"
    parameter_name = "spiral"
    structure = Structure.SPIRAL


class BarLabelFilter(StructureLabelFilter):
    title = "bar labelled"
    parameter_name = "bar"
    structure = Structure.BAR


# --- galaxies -------------------------------------------------------------------------------------------
@admin.register(Galaxy)
class GalaxyAdmin(ReadOnlyAdmin):
    change_form_template = "admin/segmentation/galaxy/change_form.html"
    list_display = ("name", "manga_id", "more_ids", "redshift_display", "origin", "mask_count", "labels")
    list_filter = (origin_filter("synthetic"), SpiralLabelFilter, BarLabelFilter)
    search_fields = GALAXY_SEARCH
    search_help_text = "Name, MaNGA id, IAU name, SDSS objid (parts match) or NSA id (exact)."
    list_per_page = 50
    fieldsets = (
        ("Identifiers", {"fields": ("name", "manga_id", "iau_name", "nsa_id", "sdss_objid", "other_ids_display")}),
        ("Sky and shape", {"fields": ("ra", "dec", "redshift", "axis_ratio", "position_angle")}),
        ("Origin", {"fields": ("origin", "truth_display", "import_batch_link", "created_at", "updated_at")}),
    )
    readonly_fields = ("other_ids_display", "origin", "truth_display", "import_batch_link")

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        current = Mask.objects.filter(is_current=True).select_related("producer").only(
            "galaxy_id", "structure", "state", "producer__kind", "producer__name", "producer__version")
        return qs.prefetch_related(Prefetch("masks", queryset=current, to_attr="current_masks"))

    @admin.display(description="z", ordering="redshift")
    def redshift_display(self, obj):
        return "—" if obj.redshift is None else f"{obj.redshift:.4f}"

    @admin.display(description="origin", ordering="synthetic")
    def origin(self, obj):
        return synthetic_badge(obj.synthetic)

    @admin.display(description="labels")
    def labels(self, obj):
        masks = sorted(obj.current_masks, key=lambda m: PRODUCER_ORDER.index(m.producer.kind))
        if not masks:
            return mark_safe('<span class="sg-muted">no masks</span>')
        lines = []
        for structure, _ in Structure.choices:
            chips = format_html_join(
                " ", '<span class="sg-state sg-state-{}" title="{}: {} ({} {})">{} {}</span>',
                ((m.state, m.get_structure_display(), m.get_state_display(), m.producer.name, m.producer.version,
                  STATE_SYMBOLS[m.state], KIND_ABBREVIATIONS.get(m.producer.kind, m.producer.kind))
                 for m in masks if m.structure == structure),
            )
            if chips:
                lines.append(format_html('<div class="sg-labels"><span class="sg-labels-s">{}</span> {}</div>',
                                         structure, chips))
        return format_html_join("", "{}", ((line,) for line in lines))

    @admin.display(description="other ids")
    def more_ids(self, obj):
        ids = [(label, value) for label, value in (("IAU", obj.iau_name), ("NSA", obj.nsa_id),
                                                   ("SDSS", obj.sdss_objid)) if value not in (None, "")]
        if not ids:
            return "—"
        return format_html_join("", '<div class="sg-id"><span class="sg-muted">{}</span> {}</div>', ids)

    @admin.display(description="masks")
    def mask_count(self, obj):
        return len(obj.current_masks)

    @admin.display(description="other ids")
    def other_ids_display(self, obj):
        return pretty_json(obj.other_ids)

    @admin.display(description="truth (synthetic)")
    def truth_display(self, obj):
        return pretty_json(obj.truth)

    @admin.display(description="import batch")
    def import_batch_link(self, obj):
        return admin_link(obj.import_batch)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        galaxy = self.get_object(request, unquote(object_id))
        if galaxy is not None and self.has_view_permission(request, galaxy):
            galaxy_mask_counts_fill(galaxy=galaxy)  # masks stored before their counts were kept: once
            extra_context["viewer"] = galaxy_viewer_context(galaxy, request.GET.get("mask"))
        return super().change_view(request, object_id, form_url, extra_context)


# --- images ---------------------------------------------------------------------------------------------
def image_thumbnail(image: Image, size: int):
    url = reverse("segmentation:image-png", args=[image.pk])
    return format_html('<img class="sg-thumb" src="{}?stretch=colour&amp;size={}&amp;v={}" alt="{}" '
                       'loading="lazy" width="{}">', url, size, image.content_hash[:12], image, size)


@admin.register(Image)
class ImageAdmin(ReadOnlyAdmin):
    list_display = ("thumbnail", "galaxy_link", "origin", "kind", "size", "pixel_scale", "bands", "has_raw",
                    "created_at")
    list_filter = ("kind", origin_filter("galaxy__synthetic"))
    list_select_related = ("galaxy",)
    search_fields = galaxy_search_fields("galaxy__")
    fields = ("preview", "galaxy_link", "origin", "kind", "size", "pixel_scale", "bands", "file_display",
              "raw_display", "wcs_header_display", "content_hash", "import_batch_link", "created_at")
    readonly_fields = ("preview", "galaxy_link", "origin", "size", "file_display", "raw_display",
                       "wcs_header_display", "import_batch_link")

    # Stored files are shown by name with a link to the site's own rendering, never as storage URLs: the
    # site does not serve MEDIA_ROOT, and on S3 a storage URL would be a signed link to the bucket.
    @admin.display(description="file")
    def file_display(self, obj):
        url = reverse("segmentation:image-png", args=[obj.pk])
        return format_html('<a href="{}">{}</a> (through the site)', url, obj.file.name)

    @admin.display(description="raw")
    def raw_display(self, obj):
        return obj.raw.name if obj.raw else "—"

    @admin.display(description="")
    def thumbnail(self, obj):
        return image_thumbnail(obj, 64)

    @admin.display(description="picture")
    def preview(self, obj):
        return image_thumbnail(obj, 256)

    @admin.display(description="galaxy", ordering="galaxy__name")
    def galaxy_link(self, obj):
        return admin_link(obj.galaxy, obj.galaxy.name)

    @admin.display(description="origin", ordering="galaxy__synthetic")
    def origin(self, obj):
        return synthetic_badge(obj.galaxy.synthetic)

    @admin.display(description="size (px)")
    def size(self, obj):
        return f"{obj.width} × {obj.height}"

    @admin.display(description="band data", boolean=True)
    def has_raw(self, obj):
        return bool(obj.raw)

    @admin.display(description="WCS header")
    def wcs_header_display(self, obj):
        return format_html('<pre class="sg-json">{}</pre>', obj.wcs_header) if obj.wcs_header else "—"

    @admin.display(description="import batch")
    def import_batch_link(self, obj):
        return admin_link(obj.import_batch)


# --- masks ----------------------------------------------------------------------------------------------
@admin.register(Mask)
class MaskAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "origin", "structure", "producer", "state_display", "is_current", "n_volunteers",
                    "denominator", "created_at")
    list_filter = ("structure", "state", "is_current", "producer__kind", "producer", origin_filter("galaxy__synthetic"))
    list_select_related = ("galaxy", "producer")
    search_fields = (*galaxy_search_fields("galaxy__"), "=content_hash")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("image")
    fields = ("preview", "galaxy_link", "origin", "image_link", "structure", "producer_link", "state_display",
              "is_current", "n_volunteers", "denominator", "width", "height", "content_hash", "data_display",
              "supersedes_link", "import_batch_link", "details_display", "created_at")
    readonly_fields = ("preview", "galaxy_link", "origin", "image_link", "producer_link", "state_display",
                       "data_display", "supersedes_link", "import_batch_link", "details_display")

    @admin.display(description="data")
    def data_display(self, obj):  # by name and through the site, never a storage URL (see ImageAdmin)
        if not obj.data:
            return "—"
        url = reverse("segmentation:mask-png", args=[obj.pk])
        return format_html('<a href="{}">{}</a> (through the site)', url, obj.data.name)

    @admin.display(description="overlay")
    def preview(self, obj):
        viewer = reverse("admin:segmentation_galaxy_change", args=[obj.galaxy_id]) + f"?mask={obj.pk}"
        if obj.state == Mask.State.NOT_ASKED:
            return format_html('Not asked: this mask has no pixels. <a href="{}">Galaxy page</a>', viewer)
        image_url = reverse("segmentation:image-png", args=[obj.image_id])
        mask_url = reverse("segmentation:mask-png", args=[obj.pk])
        return format_html(
            '<div class="sg-preview"><img src="{}?size=256&amp;v={}" alt="image"><img class="sg-preview-overlay" '
            'src="{}?size=256" alt="mask"></div><p><a href="{}">Open in the galaxy viewer</a></p>',
            image_url, obj.image.content_hash[:12], mask_url, viewer)

    @admin.display(description="origin", ordering="galaxy__synthetic")
    def origin(self, obj):
        return synthetic_badge(obj.galaxy.synthetic)

    @admin.display(description="state", ordering="state")
    def state_display(self, obj):
        return state_badge(obj.state, obj.get_state_display())

    @admin.display(description="galaxy")
    def galaxy_link(self, obj):
        return admin_link(obj.galaxy, obj.galaxy.name)

    @admin.display(description="image")
    def image_link(self, obj):
        return admin_link(obj.image)

    @admin.display(description="producer")
    def producer_link(self, obj):
        return admin_link(obj.producer)

    @admin.display(description="supersedes")
    def supersedes_link(self, obj):
        return admin_link(obj.supersedes, f"mask {obj.supersedes_id}" if obj.supersedes_id else None)

    @admin.display(description="import batch")
    def import_batch_link(self, obj):
        return admin_link(obj.import_batch)

    @admin.display(description="details")
    def details_display(self, obj):
        return pretty_json(obj.details)


# --- producers ------------------------------------------------------------------------------------------
@admin.register(Producer)
class ProducerAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind_display", "version", "code_version", "parameters_short", "mask_count",
                    "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "version", "code_version", "description")
    fields = ("kind_display", "name", "version", "parameters_display", "parameters_hash", "code_version",
              "description", "mask_count", "created_at")
    readonly_fields = ("kind_display", "parameters_display", "mask_count")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_masks=Count("masks"))

    @admin.display(description="kind", ordering="kind")
    def kind_display(self, obj):
        if obj.kind == Producer.Kind.TRUTH:
            return format_html("{} {}", obj.get_kind_display(), synthetic_badge(True))
        return obj.get_kind_display()

    @admin.display(description="parameters")
    def parameters_short(self, obj):
        text = json.dumps(obj.parameters, sort_keys=True) if obj.parameters else "—"
        return text if len(text) <= 80 else text[:77] + "…"

    @admin.display(description="parameters")
    def parameters_display(self, obj):
        return pretty_json(obj.parameters)

    @admin.display(description="masks", ordering="_masks")
    def mask_count(self, obj):
        return obj._masks


# --- import batches -------------------------------------------------------------------------------------
SUMMARY_COUNTS = ("imported", "updated", "unchanged", "skipped", "failed")


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "kind_display", "source_short", "started_at", "duration", "summary_short")
    list_filter = ("kind",)
    search_fields = ("source",)
    fields = ("kind_display", "source", "arguments_display", "started_at", "finished_at", "duration",
              "summary_display", "gallery")
    readonly_fields = ("kind_display", "arguments_display", "duration", "summary_display", "gallery")

    def get_urls(self):
        return [path("<int:pk>/gallery.png", self.admin_site.admin_view(self.gallery_png),
                     name="segmentation_importbatch_gallery"), *super().get_urls()]

    def gallery_png(self, request, pk: int):
        """The synthetic survey's gallery: 16 galaxies with their volunteer masks and truth."""
        from evalcore.synthetic.gallery import gallery_png

        batch = get_object_or_404(ImportBatch, pk=pk, kind=ImportBatch.Kind.SYNTHETIC)
        try:
            data = gallery_png(batch.source)
        except (OSError, ValueError) as exc:
            raise Http404(f"no gallery: the survey folder cannot be read ({exc})") from exc
        return HttpResponse(data, content_type="image/png")

    @admin.display(description="gallery")
    def gallery(self, obj):
        if obj.kind != ImportBatch.Kind.SYNTHETIC:
            return "—"
        url = reverse("admin:segmentation_importbatch_gallery", args=[obj.pk])
        return format_html('<a href="{}"><img src="{}" alt="gallery of the synthetic survey" '
                           'style="max-width: 100%; border: 1px solid #ccc"></a>', url, url)

    @admin.display(description="kind", ordering="kind")
    def kind_display(self, obj):
        if obj.kind == ImportBatch.Kind.SYNTHETIC:
            return format_html("{} {}", obj.get_kind_display(), synthetic_badge(True))
        return obj.get_kind_display()

    @admin.display(description="source")
    def source_short(self, obj):
        return obj.source if len(obj.source) <= 60 else "…" + obj.source[-59:]

    @admin.display(description="duration")
    def duration(self, obj):
        if obj.finished_at is None:
            return "unfinished"
        seconds = (obj.finished_at - obj.started_at).total_seconds()
        return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"

    @admin.display(description="outcome")
    def summary_short(self, obj):
        summary = obj.summary or {}
        parts = [f"{key} {summary[key]}" for key in SUMMARY_COUNTS if key in summary]
        return " · ".join(parts) or "—"

    @admin.display(description="arguments")
    def arguments_display(self, obj):
        return pretty_json(obj.arguments)

    @admin.display(description="summary")
    def summary_display(self, obj):
        summary = obj.summary or {}
        if not summary:
            return "—"
        counts = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>",
                                  ((key, summary[key]) for key in SUMMARY_COUNTS if key in summary))
        counters = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>",
                                    sorted((summary.get("counters") or {}).items()))
        html = format_html('<table class="sg-summary">{}{}</table>', counts, counters)
        for key, title in (("failures", "Failures"), ("warnings", "Warnings")):
            rows = summary.get(key) or []
            if rows:
                items = format_html_join("", "<li><code>{}</code>: {}</li>",
                                         ((r.get("where", "?"), r.get("reason", "")) for r in rows))
                html += format_html('<h4 class="sg-summary-{}">{} ({})</h4><ul>{}</ul>', key, title, len(rows), items)
        rest = {k: v for k, v in summary.items() if k not in (*SUMMARY_COUNTS, "counters", "failures", "warnings")}
        if rest:
            html += pretty_json(rest)
        return html


# --- volunteer drawings ---------------------------------------------------------------------------------
@admin.register(VolunteerClassification)
class VolunteerClassificationAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "origin", "structure", "classification_id", "polygon_count", "dropped_polygons",
                    "time_stamp")
    list_filter = ("structure", origin_filter("galaxy__synthetic"))
    list_select_related = ("galaxy",)
    search_fields = (*galaxy_search_fields("galaxy__"), "=classification_id")
    fields = ("galaxy_link", "origin", "image_link", "structure", "classification_id", "time_stamp",
              "polygon_count", "dropped_polygons", "polygons_display", "import_batch_link")
    readonly_fields = ("galaxy_link", "origin", "image_link", "polygon_count", "polygons_display",
                       "import_batch_link")

    @admin.display(description="origin", ordering="galaxy__synthetic")
    def origin(self, obj):
        return synthetic_badge(obj.galaxy.synthetic)

    @admin.display(description="polygons")
    def polygon_count(self, obj):
        return len(obj.polygons or [])

    @admin.display(description="galaxy")
    def galaxy_link(self, obj):
        return admin_link(obj.galaxy, obj.galaxy.name)

    @admin.display(description="image")
    def image_link(self, obj):
        return admin_link(obj.image)

    @admin.display(description="vertices [x, y] px")
    def polygons_display(self, obj):
        if not obj.polygons:
            return "drew nothing"
        return format_html('<pre class="sg-json">{}</pre>', json.dumps(obj.polygons))

    @admin.display(description="import batch")
    def import_batch_link(self, obj):
        return admin_link(obj.import_batch)
