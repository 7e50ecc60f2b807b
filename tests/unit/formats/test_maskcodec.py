import numpy as np
import pytest

from evalcore.formats import maskcodec


@pytest.mark.parametrize("n", [1, 7, 15, 40, 255, 1000])
def test_every_crowd_fraction_round_trips_exactly(n):
    rng = np.random.default_rng(n)
    counts = rng.integers(0, n + 1, size=(37, 53))
    counts[0, :] = np.arange(53) % (n + 1)  # every k/N value that fits in the row
    enc = maskcodec.encode(counts, n)
    assert np.array_equal(maskcodec.decode_numerators(enc.png), counts)
    fractions = maskcodec.decode(enc.png, n)
    assert np.array_equal(fractions, (counts / n).astype(np.float32))
    assert (enc.height, enc.width, enc.denominator) == (37, 53, n)


def test_model_fractions_are_quantised_to_within_half_a_step():
    f = np.linspace(0, 1, 256 * 256).reshape(256, 256)
    enc = maskcodec.encode_fractions(f)
    back = maskcodec.decode(enc.png, enc.denominator)
    assert np.max(np.abs(back - f)) <= 0.5 / 255 + 1e-7


def test_hash_depends_on_content_and_denominator():
    a = np.zeros((8, 8), int)
    a[2, 3] = 1
    assert maskcodec.encode(a, 15).content_hash == maskcodec.encode(a.copy(), 15).content_hash
    assert maskcodec.encode(a, 15).content_hash != maskcodec.encode(a, 14).content_hash
    b = a.copy()
    b[2, 4] = 1
    assert maskcodec.encode(a, 15).content_hash != maskcodec.encode(b, 15).content_hash


@pytest.mark.parametrize(
    "counts, n, message",
    [
        (np.full((4, 4), 16), 15, "0..15"),
        (np.full((4, 4), -1), 15, "0..15"),
        (np.zeros((4, 4, 2), int), 15, "2-D"),
        (np.zeros((4, 4)), 15, "integers"),
        (np.zeros((4, 4), int), 0, "denominator"),
    ],
)
def test_bad_input_is_refused_with_a_reason(counts, n, message):
    with pytest.raises((ValueError, TypeError), match=message):
        maskcodec.encode(counts, n)


def test_nan_fractions_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        maskcodec.encode_fractions(np.full((3, 3), np.nan))
