"""The blinded rating app: studies, raters, items with candidate masks, assignments and answers.

Design (see docs/ratings.md):
- A Study compares 2-3 sources (Producers) on (galaxy, structure) Items; its display and design settings
  are pre-registered and frozen when it opens (changes afterwards are refused; logged overrides only).
- The assignment is generated when the study opens: each item gets ``raters_per_item`` raters, and the
  order of the sources among the panels is counterbalanced across raters (Latin-square rows), so the
  design does not depend on who arrives first. Each Assignment stores its panel order.
- Raters only ever see Assignment tokens and panel tokens; nothing that identifies a source.
- One Answer per (assignment, candidate), enforced by the database; edits keep their history.
"""
from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from evalcore import vocabulary
from segmentation.models import Galaxy, Mask, Producer, Structure


def new_token() -> str:
    return secrets.token_urlsafe(18)


Quality = models.IntegerChoices("Quality", vocabulary.choices(vocabulary.QUALITY_FULL_LABELS, vocabulary.QUALITY_NAMES),
                                 module=__name__)


class Study(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    Display = models.TextChoices("Display", vocabulary.choices(vocabulary.DISPLAY_LABELS, {
        vocabulary.MATCHED: "MATCHED", vocabulary.MATCHED_SOFT: "MATCHED_SOFT", vocabulary.RAW_SOFT: "SOFT",
        vocabulary.ONE_THRESHOLD: "BINARY"}), module=__name__, qualname="Study.Display")

    name = models.CharField(max_length=200, unique=True)
    instructions = models.TextField(blank=True)
    consent_text = models.TextField(
        default="I agree that my ratings, my profile answers and the time I spend are stored and analysed "
        "under a pseudonym for this study, and may be published in aggregate."
    )
    structures = models.JSONField(default=list, help_text='e.g. ["spiral", "bar"]')
    sources = models.ManyToManyField(Producer, related_name="studies")
    calibration = models.BooleanField(
        default=False, help_text="A calibration study: the known truth of synthetic galaxies may be one of the "
        "rated sources (raters are then measured against it). Other studies never rate the truth.")
    selection = models.JSONField(default=dict, blank=True,
                                 help_text="How galaxies were chosen: explicit list, filter, or seeded sample.")
    test_split_of = models.ForeignKey("segmentation.ModelVersion", null=True, blank=True, on_delete=models.PROTECT,
                                      help_text="Galaxies must come from this model version's test split.")
    training_override = models.BooleanField(default=False)
    training_override_reason = models.TextField(blank=True)
    display = models.CharField(max_length=20, choices=Display.choices, default=vocabulary.MATCHED)
    threshold = models.FloatField(default=0.5, help_text="Used only by the raw one-threshold display.")
    consensus_level = models.FloatField(
        default=0.5, help_text="Matched display: the share of volunteers at which a pixel counts as marked.")
    display_overrides = models.JSONField(default=dict, blank=True,
                                         help_text="Per-producer display, set deliberately: {producer_id: style}.")
    raters_per_item = models.PositiveIntegerField(default=3)
    repeat_rate = models.FloatField(default=0.05, help_text="Share of extra repeated items (intra-rater).")
    attention_rate = models.FloatField(default=0.03, help_text="Share of extra attention-check items.")
    practice_items = models.PositiveIntegerField(default=3)
    seed = models.PositiveIntegerField(default=0)
    # Pre-registration: recorded before opening, frozen afterwards.
    primary_question = models.TextField(blank=True)
    planned_items = models.PositiveIntegerField(null=True, blank=True)
    planned_raters = models.PositiveIntegerField(null=True, blank=True)
    stopping_rule = models.TextField(blank=True)
    shortfall_acknowledged = models.PositiveIntegerField(
        null=True, blank=True, editable=False,
        help_text="The number of items an admin accepted in place of the planned number (a shortfall); "
        "choosing galaxies again asks for a new acknowledgement.")
    # Frozen when the study opens: each source's marking level (and where it comes from) and the machine
    # blinding audit of the panels raters receive (ratings/services/blinding_audit.py).
    display_levels = models.JSONField(default=dict, blank=True, editable=False)
    blinding_audit = models.JSONField(default=dict, blank=True, editable=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    results_unlocked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    FROZEN_FIELDS = ("structures", "selection", "display", "threshold", "display_overrides", "consensus_level",
                     "raters_per_item",
                     "repeat_rate", "attention_rate", "seed", "primary_question", "planned_items",
                     "planned_raters", "stopping_rule", "test_split_of_id", "training_override",
                     "practice_items", "calibration")

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"

    def __str__(self):
        return self.name


class StudyLog(models.Model):
    """Every change of a study's design after it was drafted, with who, when and why."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField(auto_now_add=True)
    user = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40)
    detail = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at"]

    def __str__(self):
        return f"{self.study} {self.action} {self.at:%Y-%m-%d %H:%M}"


class Invitation(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="invitations")
    token = models.CharField(max_length=40, unique=True, default=new_token)
    note = models.CharField(max_length=200, blank=True)
    max_uses = models.PositiveIntegerField(default=1)
    uses = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"invitation to {self.study} ({self.uses}/{self.max_uses})"


class Rater(models.Model):
    """A person's membership of one study, with consent and profile. Exports use the pseudonym."""

    class Career(models.TextChoices):
        STUDENT = "student", "Student"
        POSTDOC = "postdoc", "Postdoc"
        FACULTY = "faculty", "Faculty / staff scientist"
        OTHER = "other", "Other"

    class Experience(models.TextChoices):
        NONE = "none", "None"
        SOME = "some", "Some (read papers, looked at images)"
        EXPERT = "expert", "Expert (published on galaxy morphology)"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="raters")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater_memberships")
    pseudonym = models.CharField(max_length=20)
    is_staff = models.BooleanField(default=False, help_text="Staff who also rate are flagged in the data.")
    consented_at = models.DateTimeField(null=True, blank=True)
    career_stage = models.CharField(max_length=10, choices=Career.choices, blank=True)
    experience = models.CharField(max_length=10, choices=Experience.choices, blank=True)
    helped_build = models.BooleanField(null=True, help_text="Helped build any compared source.")
    practice_done_at = models.DateTimeField(null=True, blank=True)
    slot = models.PositiveIntegerField(null=True, blank=True, help_text="The design slot this rater claimed.")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "pseudonym"]
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], name="one_membership_per_study"),
            models.UniqueConstraint(fields=["study", "pseudonym"], name="unique_pseudonym"),
            models.UniqueConstraint(fields=["study", "slot"], name="one_rater_per_slot"),
        ]

    def __str__(self):
        return f"{self.pseudonym} in {self.study}"

    @property
    def profile_complete(self) -> bool:
        return bool(self.career_stage and self.experience and self.helped_build is not None)


class Item(models.Model):
    """One (galaxy, structure) with its candidate masks. Practice items are never counted."""

    class Kind(models.TextChoices):
        REAL = "real", "Real"
        REPEAT = "repeat", "Repeat (intra-rater)"
        ATTENTION = "attention", "Attention check"
        PRACTICE = "practice", "Practice"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.PROTECT)
    structure = models.CharField(max_length=10, choices=Structure.choices)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REAL)
    repeat_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="repeats")

    class Meta:
        ordering = ["study", "id"]

    def __str__(self):
        return f"{self.galaxy.name} {self.structure} ({self.kind})"


class Candidate(models.Model):
    """A mask shown as one panel of an item. ``is_decoy``: the deliberately wrong mask of an attention check."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="candidates")
    mask = models.ForeignKey(Mask, on_delete=models.PROTECT, related_name="candidates")
    producer = models.ForeignKey(Producer, on_delete=models.PROTECT)
    is_decoy = models.BooleanField(default=False)
    decoy_of = models.ForeignKey("segmentation.Galaxy", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+", help_text="Attention checks: the galaxy the wrong mask is from.")

    class Meta:
        ordering = ["item", "id"]

    def __str__(self):
        return f"candidate {self.pk} of item {self.item_id}"


class Assignment(models.Model):
    """One design slot's task on one item: its place in the slot's seeded sequence and the panel order.

    The design is made when the study opens, for ``planned_raters`` slots; a rater claims a free slot when
    they join, so the design never depends on who arrives first.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="assignments")
    slot = models.PositiveIntegerField(help_text="Design row; claimed by one rater.")
    rater = models.ForeignKey(Rater, null=True, blank=True, on_delete=models.PROTECT, related_name="assignments")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    position = models.PositiveIntegerField(help_text="Order of this item in the slot's sequence.")
    panel_order = models.JSONField(help_text="Candidate ids, left to right.")
    token = models.CharField(max_length=40, unique=True, default=new_token)
    first_shown_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    seconds_spent = models.FloatField(default=0)
    comment = models.TextField(blank=True)
    flagged_bad_image = models.BooleanField(default=False)

    class Meta:
        ordering = ["study", "slot", "position"]
        constraints = [
            models.UniqueConstraint(fields=["slot", "item"], name="one_assignment_per_slot_item"),
            models.UniqueConstraint(fields=["study", "slot", "position"], name="one_position_per_slot"),
        ]

    def __str__(self):
        return f"slot {self.slot} item {self.item_id} #{self.position}"


class Answer(models.Model):
    """The rating of one candidate within one assignment. Rank 1 = best; tied neighbours share a rank."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="answers")
    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT, related_name="answers")
    panel_position = models.PositiveIntegerField()
    rank = models.PositiveIntegerField()
    tied = models.BooleanField(default=False, help_text="Shares its rank with another candidate.")
    quality = models.PositiveSmallIntegerField(choices=Quality.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    edits = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["assignment", "panel_position"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "candidate"], name="one_answer_per_candidate"),
            models.CheckConstraint(condition=Q(quality__gte=0) & Q(quality__lte=3), name="quality_in_scale"),
            models.CheckConstraint(condition=Q(rank__gte=1), name="rank_positive"),
        ]

    def __str__(self):
        return f"answer {self.pk}: rank {self.rank}, quality {self.quality}"


class AnswerRevision(models.Model):
    """The previous values of an answer each time a rater changed it."""

    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="revisions")
    rank = models.PositiveIntegerField()
    tied = models.BooleanField()
    quality = models.PositiveSmallIntegerField(choices=Quality.choices)
    replaced_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"revision of answer {self.answer_id}"


class BlindingGuess(models.Model):
    """At the end: "which source do you think made this panel?" for a few panels."""

    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="guesses")
    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT)
    token = models.CharField(max_length=40, unique=True, default=new_token)
    guessed_kind = models.CharField(max_length=20, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "blinding guesses"
        constraints = [models.UniqueConstraint(fields=["rater", "candidate"], name="one_guess_per_panel")]

    def __str__(self):
        return f"guess by {self.rater} on candidate {self.candidate_id}"


class PanelImage(models.Model):
    """A rendered panel (mask alone or over the image), rendered once and then served through the site."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="renders")
    variant = models.CharField(max_length=20)
    file = models.FileField(upload_to="panels/")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["candidate", "variant"], name="one_render_per_variant")]

    def __str__(self):
        return f"{self.variant} panel of candidate {self.candidate_id}"
