"""Galaxies, their images, the masks drawn on those images and what produced each mask.

Invariants kept here (and by database constraints):
- a Mask is immutable once stored: new content makes a new Mask, marked current, and the old one stays;
- at most one current Mask per (galaxy, image, structure, producer);
- "not asked" and "asked, nothing marked" are different label states.
"""
from __future__ import annotations

from django.db import models
from django.db.models import Q

from evalcore import vocabulary
from evalcore.formats import maskcodec

Structure = models.TextChoices("Structure", vocabulary.choices(vocabulary.STRUCTURE_LABELS), module=__name__)


class ImportBatch(models.Model):
    """One run of an importer or generator: what was read, by which command, with what outcome."""

    class Kind(models.TextChoices):
        GZ3D = "gz3d", "GZ3D files"
        IMAGES = "images", "Images"
        CATALOGUE = "catalogue", "Catalogue"
        SYNTHETIC = "synthetic", "Synthetic survey"
        SPARCFIRE = "sparcfire", "SpArcFiRe run"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    source = models.TextField(help_text="Paths or URL the batch read.")
    arguments = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="Counts and the failures with reasons.")

    class Meta:
        ordering = ["-started_at"]
        verbose_name_plural = "import batches"

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.started_at:%Y-%m-%d %H:%M})"


class Galaxy(models.Model):
    """A galaxy on the sky. Identifiers are nullable: importers fill what their source knows."""

    name = models.CharField(max_length=100, unique=True, help_text="Free name; unique within the site.")
    manga_id = models.CharField(max_length=30, null=True, blank=True, unique=True, verbose_name="MaNGA id")
    iau_name = models.CharField(max_length=40, null=True, blank=True, db_index=True, verbose_name="IAU name")
    nsa_id = models.BigIntegerField(null=True, blank=True, db_index=True, verbose_name="NSA id")
    sdss_objid = models.CharField(max_length=30, null=True, blank=True, db_index=True, verbose_name="SDSS objid")
    other_ids = models.JSONField(default=dict, blank=True, help_text="Further survey identifiers.")
    ra = models.FloatField(null=True, blank=True, help_text="deg (ICRS)")
    dec = models.FloatField(null=True, blank=True, help_text="deg (ICRS)")
    redshift = models.FloatField(null=True, blank=True)
    axis_ratio = models.FloatField(null=True, blank=True, help_text="Disk minor/major axis ratio b/a.")
    position_angle = models.FloatField(null=True, blank=True, help_text="Disk major axis, deg east of north.")
    synthetic = models.BooleanField(default=False, db_index=True)
    truth = models.JSONField(
        null=True, blank=True, help_text="Ground truth of a synthetic galaxy (bar length, pitch angle, ...)."
    )
    import_batch = models.ForeignKey(ImportBatch, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "galaxies"
        indexes = [models.Index(fields=["ra", "dec"])]

    def __str__(self):
        return f"{self.name} (synthetic)" if self.synthetic else self.name


class Image(models.Model):
    """A picture of a galaxy as imported: RGB pixels in storage, its WCS and pixel scale.

    ``file`` holds the RGB rendering (PNG, row 0 = north) that people see and models read. ``raw`` keeps
    the imported band data (FITS) when there was any, so a different stretch can be made later.
    """

    class Kind(models.TextChoices):
        GZ3D_SUBJECT = "gz3d_subject", "GZ3D subject image"
        SURVEY_CUTOUT = "survey_cutout", "Survey cutout"
        OTHER = "other", "Other"

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="images")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    file = models.FileField(upload_to="images/")
    raw = models.FileField(upload_to="images/raw/", blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    pixel_scale = models.FloatField(null=True, blank=True, help_text="arcsec per pixel")
    wcs_header = models.TextField(blank=True, help_text="FITS header text of the celestial WCS, if known.")
    bands = models.CharField(max_length=40, blank=True, help_text="e.g. 'grz asinh (Legacy Survey)', 'r', 'RGB'.")
    content_hash = models.CharField(max_length=64, help_text="sha256 of the stored RGB pixels.")
    import_batch = models.ForeignKey(ImportBatch, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["galaxy", "kind", "id"]
        constraints = [
            models.UniqueConstraint(fields=["galaxy", "kind"], name="one_image_per_galaxy_and_kind"),
        ]

    def __str__(self):
        return f"{self.galaxy.name} {self.get_kind_display()} {self.width}x{self.height}"


class Producer(models.Model):
    """What made a mask: volunteers of a release, a model version, the arc finder with parameters, truth.

    New sources plug in as new rows; ``parameters`` and ``code_version`` make each one reproducible.
    """

    Kind = models.TextChoices("Kind", vocabulary.choices(vocabulary.SOURCE_LABELS), module=__name__,
                              qualname="Producer.Kind")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=100, help_text="e.g. 'GZ3D v4_0_0', 'unet-resnet18 v3', 'sparcfire-py'.")
    version = models.CharField(max_length=64, help_text="Release, model version or code version.")
    parameters = models.JSONField(default=dict, blank=True)
    parameters_hash = models.CharField(max_length=64, editable=False)
    code_version = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "name", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "name", "version", "parameters_hash"], name="unique_producer_identity"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.name} {self.version}"


class Mask(models.Model):
    """A per-pixel fraction map of one structure, on one image's grid, from one producer.

    Stored exactly as integer numerators over ``denominator`` (see ``evalcore.formats.maskcodec``).
    Immutable: services create a new Mask when content changes and flip ``is_current``.
    """

    State = models.TextChoices("State", vocabulary.choices(vocabulary.MASK_STATE_LABELS), module=__name__,
                               qualname="Mask.State")

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="masks")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="masks")
    structure = models.CharField(max_length=10, choices=Structure.choices)
    producer = models.ForeignKey(Producer, on_delete=models.PROTECT, related_name="masks")
    state = models.CharField(max_length=10, choices=State.choices)
    data = models.FileField(upload_to="masks/", blank=True, help_text="PNG of numerators; empty if not asked.")
    denominator = models.PositiveIntegerField(default=1)
    n_volunteers = models.PositiveIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64, db_index=True)
    marked_pixels = models.PositiveIntegerField(null=True, blank=True,
                                                help_text="Pixels with a non-zero fraction, counted when stored.")
    peak_numerator = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="The largest numerator (peak fraction x denominator).")
    details = models.JSONField(default=dict, blank=True, help_text="Producer-specific extras (arcs, checks).")
    is_current = models.BooleanField(default=True)
    supersedes = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    import_batch = models.ForeignKey(ImportBatch, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    IMMUTABLE_FIELDS = ("galaxy_id", "image_id", "structure", "producer_id", "state", "data", "denominator",
                        "width", "height", "content_hash")

    class Meta:
        ordering = ["galaxy", "structure", "producer", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["galaxy", "image", "structure", "producer"],
                condition=Q(is_current=True),
                name="one_current_mask",
            ),
            models.CheckConstraint(condition=Q(denominator__gte=1), name="mask_denominator_positive"),
        ]
        indexes = [models.Index(fields=["producer", "structure", "is_current"])]

    def __str__(self):
        return f"{self.galaxy.name} {self.structure} by {self.producer.name} ({self.get_state_display()})"

    def save(self, *args, **kwargs):
        stored = getattr(self, "_stored", None)
        if self.pk and stored:
            changed = [f for f, v in stored.items() if getattr(self, f) != v]
            if changed:
                raise ValueError(f"Mask {self.pk} is immutable; refused change of {', '.join(changed)}")
        super().save(*args, **kwargs)

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._stored = {f: getattr(instance, f) for f in cls.IMMUTABLE_FIELDS if f in instance.__dict__}
        return instance

    def fractions(self):
        """The fraction map as float32 in [0, 1], or None when the structure was not asked."""
        if self.state == self.State.NOT_ASKED:
            return None
        with self.data.open("rb") as fh:
            return maskcodec.decode(fh.read(), self.denominator)


class VolunteerClassification(models.Model):
    """One volunteer's drawing for one task (spiral or bar) of one galaxy, as in GZ3D HDU 9 / 10."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="classifications")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, help_text="The grid the polygons live on.")
    structure = models.CharField(max_length=10, choices=Structure.choices)
    classification_id = models.BigIntegerField()
    time_stamp = models.CharField(max_length=40, blank=True)
    polygons = models.JSONField(default=list, help_text="List of polygons, each a list of [x, y] pixels.")
    dropped_polygons = models.PositiveIntegerField(default=0, help_text="Unusable polygons left out.")
    import_batch = models.ForeignKey(ImportBatch, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["galaxy", "structure", "classification_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["galaxy", "structure", "classification_id"], name="unique_classification"
            ),
        ]

    def __str__(self):
        return f"{self.galaxy.name} {self.structure} classification {self.classification_id}"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class BackgroundRun(models.Model):
    """Durable status of background work. RQ results expire; these rows do not.

    A worker refreshes ``heartbeat_at`` while it works, so a run whose worker died (SIGKILL, lost machine)
    shows as stalled and can be resumed from the admin.
    """

    STALL_AFTER_SECONDS = 180

    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    requested_by = models.CharField(max_length=150, blank=True)

    class Meta:
        abstract = True

    @property
    def is_stalled(self) -> bool:
        from django.utils import timezone

        if self.status != RunStatus.RUNNING or self.heartbeat_at is None:
            return False
        return (timezone.now() - self.heartbeat_at).total_seconds() > self.STALL_AFTER_SECONDS


class TrainingRun(BackgroundRun):
    """One training of the U-Net: its configuration, progress per epoch, and the checkpoint to resume from."""

    config = models.JSONField(help_text="Encoder, image size, epochs, batch size, learning rate, loss, selection.")
    current_epoch = models.PositiveIntegerField(default=0)
    total_epochs = models.PositiveIntegerField(default=0)
    history = models.JSONField(default=list, blank=True, help_text="Per-epoch metrics.")
    timings = models.JSONField(default=dict, blank=True)
    checkpoint = models.FileField(upload_to="checkpoints/", blank=True)
    job_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Training run #{self.pk} ({self.get_status_display()}, epoch {self.current_epoch}/{self.total_epochs})"


class ModelVersion(models.Model):
    """Trained weights and everything needed to reproduce and apply them."""

    name = models.CharField(max_length=100, unique=True)
    training_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL)
    producer = models.OneToOneField(Producer, on_delete=models.PROTECT, related_name="model_version")
    config = models.JSONField(help_text="Network and preprocessing configuration.")
    weights = models.FileField(upload_to="models/")
    weights_sha256 = models.CharField(max_length=64)
    manifest = models.FileField(upload_to="models/manifests/", blank=True,
                                help_text="JSON: training galaxies and the content hashes of their masks.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Validation and test metrics.")
    code_version = models.CharField(max_length=64, blank=True)
    package_versions = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_model"),
        ]

    def __str__(self):
        return f"{self.name}{' (active)' if self.is_active else ''}"


class GenerationRun(BackgroundRun):
    """Mask generation for a galaxy selection by one producer, split into chunks shared by many workers."""

    class Source(models.TextChoices):
        MODEL = "model", "Model"
        SPARCFIRE = "sparcfire", "Arc finder"

    source = models.CharField(max_length=12, choices=Source.choices)
    producer = models.ForeignKey(Producer, on_delete=models.PROTECT, related_name="generation_runs")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT)
    image_kind = models.CharField(max_length=20, choices=Image.Kind.choices, default=Image.Kind.SURVEY_CUTOUT)
    selection = models.JSONField(default=dict, blank=True, help_text="How the galaxies were chosen.")
    chunk_size = models.PositiveIntegerField(default=64)
    total = models.PositiveIntegerField(default=0)
    input_checks = models.JSONField(default=dict, blank=True,
                                    help_text="How the images differ from the model version's training data.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Generation run #{self.pk} ({self.source}, {self.get_status_display()})"


class GenerationChunk(models.Model):
    """One RQ job's share of a GenerationRun. Galaxies already done are skipped, so a chunk can be rerun."""

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    galaxy_ids = models.JSONField()
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    job_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=list, blank=True, help_text="[{galaxy, reason}]")
    timings = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="unique_chunk_index")]

    def __str__(self):
        return f"chunk {self.index} of run {self.run_id} ({self.status})"


class MaskMeasurement(models.Model):
    """A measurement made on one mask (bar length, spiral pitch...), with the code version that made it."""

    class Kind(models.TextChoices):
        BAR = "bar", "Bar"
        SPIRAL = "spiral", "Spiral"

    mask = models.ForeignKey(Mask, on_delete=models.CASCADE, related_name="measurements")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    code_version = models.CharField(max_length=32)
    measured = models.BooleanField(help_text="False when no measurement was possible (reason in result).")
    result = models.JSONField(help_text="The measurement's to_dict(): values, uncertainties, inputs, reasons.")
    # Indexed copies of the headline numbers, for catalogues and comparisons.
    length_kpc = models.FloatField(null=True, blank=True)
    deprojected_length_kpc = models.FloatField(null=True, blank=True)
    pitch_abs = models.FloatField(null=True, blank=True, help_text="|pitch angle|, deg")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["mask", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["mask", "kind", "code_version"], name="one_measurement_per_version"),
        ]

    def __str__(self):
        return f"{self.kind} measurement of mask {self.mask_id}"


class ExternalCatalogue(models.Model):
    """A published catalogue to compare measurements with (e.g. Hoyle et al. 2011 bar lengths)."""

    name = models.CharField(max_length=200, unique=True)
    citation = models.TextField(blank=True)
    column_mapping = models.JSONField(default=dict, blank=True)
    units = models.JSONField(default=dict, blank=True, help_text="Unit of each mapped quantity, e.g. kpc.")
    source_file = models.CharField(max_length=500, blank=True)
    imported_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


class CatalogueEntry(models.Model):
    catalogue = models.ForeignKey(ExternalCatalogue, on_delete=models.CASCADE, related_name="entries")
    key = models.CharField(max_length=100, help_text="The catalogue's own identifier of the row.")
    ra = models.FloatField(null=True, blank=True)
    dec = models.FloatField(null=True, blank=True)
    values = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["catalogue", "key"], name="unique_catalogue_key")]
        indexes = [models.Index(fields=["ra", "dec"])]

    def __str__(self):
        return f"{self.catalogue.name}: {self.key}"
