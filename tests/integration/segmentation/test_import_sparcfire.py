"""`import_sparcfire` on the real SpArcFiRe run in ../shared/fixtures/sparcfire (read in place, never copied)."""
from __future__ import annotations

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from evalcore.arcfinder import sparcfire_output as so
from segmentation.models import Galaxy, Image, ImportBatch, Mask
from segmentation.services import generation
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.imports.sparcfire import PRODUCER_NAME, import_run

NAME = "1237648721789256091"


@pytest.fixture
def run(shared_fixtures):
    root = shared_fixtures / "sparcfire"
    return {"out": root / "G.out", "inputs": root / "G.in", "galaxy": root / "G.out" / NAME}


def k_mask(run) -> np.ndarray:
    arr = np.asarray(PILImage.open(run["galaxy"] / f"{NAME}{so.K_SUFFIX}").convert("RGB"))
    return arr.sum(axis=2) > 0


def grid_clusters_in_input_frame(run) -> np.ndarray:
    """SpArcFiRe's -H clusters reprojected through its own standardisation (SpArcFiRe's frame)."""
    elps = so.read_elps(run["galaxy"] / f"{NAME}{so.ELPS_SUFFIX}")
    return so.reproject_h(so.binary_mask(run["galaxy"] / f"{NAME}{so.H_SUFFIX}"), elps, (82, 82))


@pytest.mark.django_db
def test_import_with_images_creates_galaxy_image_and_mask(run, capsys):
    call_command("import_sparcfire", str(run["out"]), "--images", str(run["inputs"]), "--no-progress")
    printed = capsys.readouterr().out
    assert "imported 1, updated 0, unchanged 0, skipped 0, failed 0" in printed
    galaxy = Galaxy.objects.get(name=NAME)
    assert galaxy.sdss_objid == NAME
    image = Image.objects.get(galaxy=galaxy)
    assert (image.kind, image.width, image.height) == ("other", 82, 82)
    assert image.raw and image.wcs_header
    mask = Mask.objects.get(galaxy=galaxy, structure="spiral", is_current=True)
    assert mask.producer.kind == "sparcfire" and mask.producer.name == PRODUCER_NAME
    assert mask.producer.parameters["errRatioThres"] == 2.5
    assert mask.producer.parameters["resizeDims"] == [256, 256]
    assert mask.producer.version.startswith("settings ")
    # the FITS has north at its last row, our image is north-up: the mask is SpArcFiRe's clusters flipped
    fractions = mask.fractions()
    assert mask.details["flipped_to_north_up"] is True and mask.details["mask_from"] == "H+elps"
    assert np.array_equal(fractions > 0, grid_clusters_in_input_frame(run)[::-1])
    assert int((fractions > 0).sum()) == 60
    arcs = mask.details["arcs"]
    assert len(arcs) == 9 and arcs[0]["gxyName"] == NAME
    assert arcs[0]["pitch_angle"] == pytest.approx(17.398058)
    assert arcs[0]["clusOutputColor"] == [0, 1, 0]
    # SpArcFiRe's own values stay as written (its frame); the top-level ones are the stored image's: mirrored
    assert mask.details["galaxy"]["chirality_maj"] == "S-wise"
    assert mask.details["chirality"] == "Z"
    assert mask.details["pitch_angle_deg"] == pytest.approx(-30.0843547)
    assert "mirrored" in mask.details["frame_note"]
    batch = ImportBatch.objects.get(kind="sparcfire")
    assert batch.summary["imported"] == 1 and batch.finished_at is not None


@pytest.mark.django_db
def test_reimport_is_unchanged(run):
    first = import_run(directory=run["out"], images_dir=run["inputs"], progress=False)
    again = import_run(directory=run["out"], images_dir=run["inputs"], progress=False)
    assert (first.imported, again.unchanged, again.imported, again.updated) == (1, 1, 0, 0)
    assert Mask.objects.filter(structure="spiral").count() == 1
    assert Image.objects.count() == 1


@pytest.mark.django_db
def test_unknown_galaxy_without_images_fails_with_reason_and_stores_nothing(run):
    summary = import_run(directory=run["out"], progress=False)
    assert summary.failed == 1 and summary.imported == 0
    assert "unknown galaxy" in summary.failures[0][1] and "--images" in summary.failures[0][1]
    assert not Galaxy.objects.exists() and not Mask.objects.exists()


@pytest.mark.django_db
def test_known_galaxy_matched_by_objid_uses_its_image_of_the_same_size(run):
    galaxy, _ = galaxy_upsert(name="some galaxy", match={"sdss_objid": NAME})
    small, _ = image_store(galaxy=galaxy, kind="gz3d_subject", rgb=np.zeros((40, 40, 3), np.uint8))
    cutout, _ = image_store(galaxy=galaxy, kind="survey_cutout", rgb=np.zeros((82, 82, 3), np.uint8))
    summary = import_run(directory=run["out"], progress=False)
    assert summary.imported == 1, summary.lines()
    assert any("assumed" in reason for _, reason in summary.warnings)
    mask = Mask.objects.get(structure="spiral")
    assert mask.image_id == cutout.pk and mask.galaxy_id == galaxy.pk
    assert np.array_equal(mask.fractions() > 0, grid_clusters_in_input_frame(run)[::-1])
    assert mask.details["chirality"] == "Z"  # assumed flipped: mirrored


@pytest.mark.django_db
def test_known_galaxy_without_an_image_of_the_right_size_fails(run):
    galaxy, _ = galaxy_upsert(name=NAME)
    image_store(galaxy=galaxy, kind="gz3d_subject", rgb=np.zeros((40, 40, 3), np.uint8))
    summary = import_run(directory=run["out"], progress=False)
    assert summary.failed == 1
    assert "no image of SpArcFiRe's input size 82x82" in summary.failures[0][1]
    assert not Mask.objects.exists()


@pytest.mark.django_db
def test_k_mask_when_the_grid_mask_is_absent_with_a_note(run, tmp_path):
    # a run folder without the -H_ mask: links to the fixture's other files (nothing copied)
    folder = tmp_path / "G.out" / NAME
    folder.mkdir(parents=True)
    for path in run["galaxy"].iterdir():
        if not path.name.endswith(so.H_SUFFIX):
            (folder / path.name).symlink_to(path)
    summary = import_run(directory=tmp_path / "G.out", images_dir=run["inputs"], progress=False)
    assert summary.imported == 1, summary.lines()
    mask = Mask.objects.get(structure="spiral")
    assert mask.details["mask_from"] == "K"
    assert "1.5 px" in mask.details["notes"][0]
    assert np.array_equal(mask.fractions() > 0, k_mask(run)[::-1])


@pytest.mark.django_db
def test_arcs_from_the_run_table_when_the_galaxy_has_no_own_csv(run, tmp_path):
    folder = tmp_path / "G.out" / NAME
    folder.mkdir(parents=True)
    for path in run["galaxy"].iterdir():
        if not path.name.endswith("_arcs.csv"):
            (folder / path.name).symlink_to(path)
    (tmp_path / "G.out" / "galaxy_arcs.csv").symlink_to(run["out"] / "galaxy_arcs.csv")
    import_run(directory=tmp_path / "G.out", images_dir=run["inputs"], progress=False)
    arcs = Mask.objects.get(structure="spiral").details["arcs"]
    assert [a["alenRank"] for a in arcs] == list(range(1, 10))


@pytest.mark.django_db
def test_missing_folder_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("import_sparcfire", str(tmp_path / "nope"), "--no-progress")


@pytest.mark.django_db
def test_folder_without_sparcfire_output_warns(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    summary = import_run(directory=tmp_path, progress=False)
    assert summary.imported == 0 and summary.failed == 0
    assert "no *-K_clusMask-reprojected.png" in summary.warnings[0][1]


@pytest.mark.django_db
def test_imported_sparcfire_and_our_arc_finder_share_one_chirality_convention(sparcfire_sdss):
    """Real SpArcFiRe output on SDSS images: imported (north-up, letters converted) and our arc finder run as a
    generation job on the stored image give the same letter where SpArcFiRe's two longest arcs agree."""
    summary = import_run(directory=sparcfire_sdss / "G.out", images_dir=sparcfire_sdss / "G.in", progress=False)
    assert summary.imported == 11, summary.lines()
    imported = {m.galaxy.name: m for m in Mask.objects.filter(producer__name=PRODUCER_NAME).select_related("galaxy")}
    agreeing = [name for name, m in imported.items() if m.details["galaxy"]["top2_chirality_agreement"] == "agree"]
    assert len(agreeing) == 3
    run = generation.generation_start(source="sparcfire", galaxies=Galaxy.objects.filter(name__in=agreeing),
                                      image_kind=Image.Kind.OTHER)
    for chunk in run.chunks.all():
        generation.chunk_process(chunk_id=chunk.pk)
    for name in agreeing:
        ours = Mask.objects.get(galaxy__name=name, producer=run.producer, structure="spiral", is_current=True)
        theirs = imported[name]
        assert theirs.details["flipped_to_north_up"] is True
        written = so.chirality_letter(theirs.details["galaxy"]["chirality_alenWtd"])
        assert ours.details["chirality"] == theirs.details["chirality"] == so.MIRRORED[written], name
        assert np.sign(ours.details["pitch_angle_deg"]) == np.sign(theirs.details["pitch_angle_deg"])
