"""The GZ3D release layout built the plain way, with astropy HDU objects (``BinTableHDU.from_columns``):
the reference that ``evalcore.formats.gz3d.write_gz3d``'s hand-laid bytes are compared with (tests) and timed
against (bench/synthetic.py)."""
from __future__ import annotations

import io
import json

import numpy as np
from astropy.io import fits

from evalcore.formats import gz3d


def _text_column(name: str, values: list[str]) -> fits.Column:
    width = max([len(v.encode()) for v in values] + [1])
    return fits.Column(name=name, format=f"{width}A", array=np.array(values, dtype=f"U{width}"))


def _metadata_hdu(metadata: dict) -> fits.BinTableHDU:
    cols = []
    for name, value in metadata.items():
        if isinstance(value, bool | np.bool_):
            cols.append(fits.Column(name=name, format="L", array=np.array([bool(value)])))
        elif isinstance(value, int | np.integer):
            cols.append(fits.Column(name=name, format="K", array=np.array([int(value)], np.int64)))
        elif isinstance(value, float | np.floating):
            cols.append(fits.Column(name=name, format="D", array=np.array([float(value)])))
        else:
            text = "" if value is None else str(value)
            cols.append(_text_column(name, [text]))
    return fits.BinTableHDU.from_columns(cols)


def _drawings_hdu(classifications, column: str) -> fits.BinTableHDU:
    return fits.BinTableHDU.from_columns([
        fits.Column(name="classification_id", format="K",
                    array=np.array([int(c.classification_id) for c in classifications], np.int64)),
        _text_column("time_stamp", [str(c.time_stamp) for c in classifications]),
        _text_column(column, [json.dumps(c.polygons) for c in classifications]),
    ])


def _cluster_hdu() -> fits.BinTableHDU:
    cols = [fits.Column(name=n, format="K" if n == "count" else "D", array=np.zeros(0))
            for n in gz3d.CLUSTER_COLUMNS]
    return fits.BinTableHDU.from_columns(cols, nrows=0)


def astropy_gz3d_bytes(*, image, header, metadata, spiral, bar, extra_hdus=(), counts=None) -> bytes:
    """The uncompressed FITS bytes of a GZ3D-layout file, every HDU built and written by astropy.
    ``counts``: HDU 3 / 4 when already rasterised, as ``gz3d.gz3d_bytes`` takes them."""
    shape = image.shape[:2]
    if counts is None:
        counts = (gz3d.polygon_counts(spiral, shape), gz3d.polygon_counts(bar, shape))
    wcs_header = gz3d.celestial_wcs(header).to_header()
    blank = np.zeros(shape, np.float64)
    clicks = sorted({int(c.classification_id) for c in [*spiral, *bar]})
    hdus = [
        fits.PrimaryHDU(data=image, header=header.copy()),
        fits.ImageHDU(data=blank, header=wcs_header),
        fits.ImageHDU(data=blank, header=wcs_header),
        fits.ImageHDU(data=counts[0], header=wcs_header),
        fits.ImageHDU(data=counts[1], header=wcs_header),
        _metadata_hdu(metadata),
        _cluster_hdu(),
        _cluster_hdu(),
        fits.BinTableHDU.from_columns([
            fits.Column(name="classification_id", format="K", array=np.array(clicks, np.int64)),
            _text_column("time_stamp", [""] * len(clicks)),
            _text_column("center_points", ["[]"] * len(clicks)),
            _text_column("star_points", ["[]"] * len(clicks)),
        ]),
        _drawings_hdu(spiral, gz3d.TASK_COLUMNS[gz3d.SPIRAL_HDU]),
        _drawings_hdu(bar, gz3d.TASK_COLUMNS[gz3d.BAR_HDU]),
        *extra_hdus,
    ]
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf, output_verify="ignore")
    return buf.getvalue()
