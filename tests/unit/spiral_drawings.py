"""Drawn log-spiral masks for the spiral measurement tests (tests/unit/measure): arms cut at radii on an
inclined disk (``drawn_spiral``) and hand-drawn-like outlines (``drawn_outline``), on an N x N grid."""
import numpy as np

N = 128
CENTRE = (N - 1) / 2


def disk_polar(q=1.0, disk_pa=0.0):
    """Disk-plane (r, theta) of every pixel of a disk of axis ratio q whose major axis points disk_pa deg
    east of north; theta runs anticlockwise on the displayed image (north up, east left)."""
    rows, cols = np.indices((N, N)).astype(float)
    x, y = cols - CENTRE, CENTRE - rows  # displayed: x to the right (west), y up (north)
    pa = np.radians(disk_pa)
    # The major axis points at display angle 90 + pa deg (north = up, east = left = anticlockwise).
    major = np.array([np.cos(np.pi / 2 + pa), np.sin(np.pi / 2 + pa)])
    minor = np.array([-major[1], major[0]])  # 90 deg further anticlockwise
    a = x * major[0] + y * major[1]
    b_ = (x * minor[0] + y * minor[1]) / q
    return np.hypot(a, b_), np.arctan2(b_, a)


def drawn_spiral(pitch_deg, n_arms=2, q=1.0, disk_pa=0.0, r_in=8.0, r_out=55.0, half_width=0.25):
    """Arms of r = r0 exp(-b theta), b = tan(pitch), drawn in the disk plane and seen on a disk of axis
    ratio q whose major axis points disk_pa deg east of north; each pixel is mapped back to the disk plane.
    ``half_width`` is in phase (rad), so at every radius an arm is symmetric about its centre in angle,
    like light above a threshold on an axisymmetric disk; ``r_in``, ``r_out`` cut the arms at radii.
    A callable ``half_width(r)`` makes arms whose width changes along them."""
    r, theta = disk_polar(q, disk_pa)
    b = np.tan(np.radians(pitch_deg))
    phase = theta + np.log(np.maximum(r, 1e-9)) / b  # constant along an arm
    hw = half_width(r) if callable(half_width) else half_width
    on_arm = np.cos(n_arms * phase) > np.cos(n_arms * hw)
    return (on_arm & (r >= r_in) & (r <= r_out)).astype(float)


def drawn_outline(pitch_deg, q=1.0, disk_pa=0.0, half_width=0.15, r_in=10.0, r_out=50.0, ends="square",
                  taper=False):
    """One arm as a hand-drawn outline: a band about the log spiral ln r = -b theta from ``r_in`` to
    ``r_out`` px along its centre line, with ends across the arm (``"square"``) or rounded (``"round"``),
    optionally narrowing towards both ends, symmetric about its centre line. Worked in the log-polar plane
    (theta, ln r), where the arm is a straight band; ``half_width`` is measured across it."""
    r, theta = disk_polar(q, disk_pa)
    b = np.tan(np.radians(pitch_deg))
    ln_r = np.log(np.maximum(r, 1e-9)) - np.log(r_in)
    centre = -ln_r / b  # unwrapped angle of the centre line at each pixel's radius
    t = centre + (theta - centre + np.pi) % (2 * np.pi) - np.pi
    unit = np.array([-1.0, b]) / np.hypot(1.0, b) * np.sign(b)  # along the arm, outwards
    along = t * unit[0] + ln_r * unit[1]
    across = -t * unit[1] + ln_r * unit[0]
    length = np.log(r_out / r_in) * np.hypot(1.0, b) / abs(b)
    hw = half_width
    if taper:
        hw = half_width * (0.55 + 0.45 * np.sin(np.pi * np.clip(along / length, 0, 1)))
    band = (np.abs(across) <= hw) & (along >= 0) & (along <= length)
    if ends == "round":
        band |= (np.hypot(along, across) <= hw) | (np.hypot(along - length, across) <= hw)
    return band.astype(float)
