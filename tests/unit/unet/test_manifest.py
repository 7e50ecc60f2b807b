"""The training manifest: one schema, written and read by evalcore.unet.manifest."""
import pytest

from evalcore.unet.manifest import NOT_ASKED, ManifestEntry, manifest_bytes, read_manifest, splits_by_galaxy


def test_a_manifest_reads_back_as_written():
    entries = [ManifestEntry(1, "a", "train", 10, {"spiral": "abc", "bar": NOT_ASKED}),
               ManifestEntry(2, "b", "test", 20, {"spiral": NOT_ASKED, "bar": "def"})]
    manifest = read_manifest(manifest_bytes(entries))
    assert manifest["galaxies"][0] == {"galaxy_id": 1, "name": "a", "split": "train", "image_id": 10,
                                       "masks": {"spiral": "abc", "bar": NOT_ASKED}}
    assert splits_by_galaxy(manifest) == {1: "train", 2: "test"}


def test_no_manifest_is_an_empty_one_and_a_broken_one_is_refused():
    assert read_manifest(None) == {"galaxies": []}
    with pytest.raises(ValueError, match="not JSON"):
        read_manifest(b"{nope")
    with pytest.raises(ValueError, match="no list of galaxies"):
        read_manifest(b'{"galaxies": 3}')
