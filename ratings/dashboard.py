"""Staff pages of a rating study: progress, outcome figures (when visible), the unlock, CSV downloads.

A thin layer over ``ratings.services.results`` (cached statistics and figures), ``evalcore.study.plots`` and
``ratings.services.exports``. Staff only: anonymous visitors are sent to the login page, signed-in non-staff get 403.
"""
from __future__ import annotations

from django.contrib import messages
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseForbidden, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST
from redis.exceptions import ConnectionError as RedisConnectionError

from evalsite.staff import staff_required
from ratings import jobs
from ratings.models import Study
from ratings.services import exports, results

UNLOCK_PERMISSION = "ratings.change_study"
# The outcome sections of the page: (anchor, title, plot name or None, tables behind it, what it shows).
SECTIONS = (
    ("quality", "Quality levels per source", "quality",
     ("quality_levels", "quality_summary", "quality_summary_all_raters"),
     "Share of rated answers at each of the four quality levels; the headline share is 'Mostly well' or "
     "better, each source over its own rated answers."),
    ("first", "Ranked first", "first_choice", ("first_choice",),
     "Share of ranked evaluations in which each source alone, or a tie, took first place."),
    ("pairwise", "Pairwise win rates", "pairwise", ("pairwise_wins",),
     "How often the row source was ranked strictly above the column source (ties count in the denominator)."),
    ("differences", "Differences between sources", None, ("ordinal_model", "friedman", "wilcoxon"),
     "Proportional-odds model with rater effects (galaxy-clustered errors); Friedman and Wilcoxon tests with "
     "galaxies as blocks and Holm correction."),
    ("reliability", "Reliability", "alpha", ("krippendorff_alpha", "intra_rater", "attention"),
     "Agreement between raters (Krippendorff's alpha, ordinal), within raters on repeated items (weighted "
     "kappa) and attention checks."),
    ("position", "Position bias", "position", ("position_contrast", "position_bias"),
     "Each position's effect (position_contrast): how much higher a panel is rated, and how much more often it "
     "is ranked first, at that position than the same source at the other positions of the same evaluation "
     "(evaluations as blocks, galaxy-clustered intervals; 0 means no position bias). Below it, the raw "
     "level and first-rank rate by position."),
    ("blinding", "Blinding audit", "blinding", ("blinding_audit", "blinding_confusion"),
     "Could raters tell which source made a panel? Accuracy of their guesses against chance."),
    ("raters", "Raters", None, ("raters", "rater_source_means", "exclusions"),
     "Per rater: items done, time per item, agreement with the others, mean level per source; exclusions."),
)


def _percent(share) -> str:
    return "–" if share is None or share != share else f"{100 * share:.1f}%"


def _html_table(frame) -> str:
    if frame.empty:
        return "<p class='empty'>No rows.</p>"
    return frame.to_html(index=False, border=0, classes="numbers", na_rep="",
                         float_format=lambda v: f"{v:.4g}")


@staff_required()
def index(request):
    studies = Study.objects.order_by("-created_at")
    return render(request, "ratings/staff/index.html", {"studies": studies})


@staff_required()
def study_dashboard(request, study_id: int):
    study = get_object_or_404(Study, pk=study_id)
    context = {
        "study": study, "progress": results.progress(study), "visible": results.outcomes_visible(study),
        "can_unlock": request.user.has_perm(UNLOCK_PERMISSION) and study.state == Study.State.OPEN,
        "unlock_log": study.log.filter(action=results.UNLOCK_ACTION).order_by("-at").first(),
        "exports": results.EXPORTS,
        "machine_audit": _machine_audit(study),
    }
    if context["visible"] and context["progress"].answers:
        res = _results_or_queue(study, context["progress"].answers)
        if res is None:
            context["computing"] = True
            return render(request, "ratings/staff/dashboard.html", context)
        tables = res.tables
        attention = tables["attention"]
        rules = dict(zip(tables["rules"]["rule"], tables["rules"]["text"]))
        context.update(
            fingerprint=res.fingerprint,
            rules=rules,
            failing=attention[attention["fails_rule"]].to_dict("records"),
            verdicts=tables["blinding_audit"][["structure", "verdict"]].astype(str).to_dict("records"),
            headline=[{**h, "share": _percent(h["share_mostly_well_or_better"]),
                       "low": _percent(h["share_ci_low"]), "high": _percent(h["share_ci_high"])}
                      for h in tables["quality_summary"].to_dict("records")],
            sections=[{
                "anchor": anchor, "title": title, "about": about,
                "plot": res.plots.get(plot) and plot,
                "tables": [{"name": name, "html": mark_safe(_html_table(tables[name])),  # to_html escapes the cells
                            "rows": len(tables[name])} for name in names],
            } for anchor, title, plot, names, about in SECTIONS],
        )
    return render(request, "ratings/staff/dashboard.html", context)


def _machine_audit(study: Study) -> dict:
    """The machine blinding audit frozen when the study opened (ratings/services/blinding_audit.py), for the
    blinding section."""
    from ratings.services import blinding_audit

    result = study.blinding_audit or {}
    if not result:
        return {}
    return {"lines": blinding_audit.report_lines(result), "leaks": blinding_audit.leaks(result),
            "at": result.get("at", ""), "frozen": bool(result.get("frozen"))}


def _results_or_queue(study: Study, n_answers: int):
    """The cached results; on a cold cache, computed now for a small study, queued for a large one
    (None: the page says so and reloads itself). If Redis is down, computed now whatever the size."""
    res = results.cached_results(study)
    if res is not None or n_answers <= results.INLINE_MAX_ANSWERS:
        return res or results.study_results(study)
    try:
        jobs.results_enqueue(study=study)
    except RedisConnectionError:
        return results.study_results(study)
    return None


@require_POST
@staff_required()
def unlock(request, study_id: int):
    study = get_object_or_404(Study, pk=study_id)
    if not request.user.has_perm(UNLOCK_PERMISSION):
        return HttpResponseForbidden("Only an admin who may change studies can unlock results.")
    try:
        results.results_unlock(study=study, user=request.user, reason=request.POST.get("reason", ""))
    except results.ResultsError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Results unlocked; the unlock is recorded in the study's log.")
    return redirect("ratings_staff:dashboard", study_id=study.pk)


def _hidden(study: Study) -> HttpResponse:
    return HttpResponse(f"The outcomes of study {study.name!r} are hidden while it is {study.state}: close it, "
                        "or unlock its results on the dashboard (logged), first.",
                        status=409, content_type="text/plain; charset=utf-8")


def _csv_response(lines, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@staff_required()
def export_csv(request, study_id: int, kind: str):
    study = get_object_or_404(Study, pk=study_id)
    if kind not in results.EXPORTS:
        raise Http404(f"no export {kind}")
    if not results.outcomes_visible(study):
        return _hidden(study)
    return _csv_response(results.export_lines(study, kind), results.export_filename(study, kind))


@staff_required()
def table_csv(request, study_id: int, fingerprint: str, name: str):
    study = get_object_or_404(Study, pk=study_id)
    if not results.outcomes_visible(study):
        return _hidden(study)
    tables = results.study_results(study, with_plots=False).tables
    if name not in tables:
        raise Http404(f"no table {name}")
    frame = tables[name]
    plain = frame.astype(object).where(frame.notna(), None)
    return _csv_response(exports.csv_lines(plain.to_dict("records"), tuple(frame.columns)),
                         results.export_filename(study, name))


@staff_required()
def plot_png(request, study_id: int, fingerprint: str, name: str):
    study = get_object_or_404(Study, pk=study_id)
    if not results.outcomes_visible(study):
        return _hidden(study)
    path = results.cached_plot(study, fingerprint, name)
    if path is None:
        raise Http404("this figure is not in the cache (the data changed: reload the dashboard)")
    response = FileResponse(default_storage.open(path, "rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"  # the fingerprint in the URL changes with the data
    return response
