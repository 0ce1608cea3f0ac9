"""Landmark schemes: number of points, left/right flip permutation and the normalising points.

ibug68 is the 300-W / Multi-PIE 68-point markup (Sagonas et al., 300 Faces In-the-Wild, 2013);
wflw98 the WFLW 98-point markup (Wu et al., Look at Boundary, CVPR 2018). Indices are 0-based.
Horizontal flip of a crop of width S in 0-based pixel-centre coordinates: x' = S - 1 - x, then
landmarks are re-ordered with ``flip_permutation`` so that point i keeps its semantic meaning.
"""
from __future__ import annotations

from dataclasses import dataclass


def _mirror(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    perm = list(range(n))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


def _ibug68() -> list[int]:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw 0..16
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips
    return _mirror(68, pairs)


def _wflw98() -> list[int]:
    pairs = [(i, 32 - i) for i in range(16)]  # jaw 0..32
    pairs += [(33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47)]
    pairs += [(55, 59), (56, 58)]
    pairs += [(60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73)]
    pairs += [(76, 82), (77, 81), (78, 80), (83, 87), (84, 86), (88, 92), (89, 91), (93, 95), (96, 97)]
    return _mirror(98, pairs)


@dataclass(frozen=True)
class Scheme:
    name: str
    num_landmarks: int
    flip_permutation: tuple[int, ...]
    outer_eye_corners: tuple[int, int]  # inter-ocular normalisation (300-W, WFLW protocols)
    left_eye: tuple[int, ...]  # points averaged to the eye centre (inter-pupil normalisation)
    right_eye: tuple[int, ...]


SCHEMES: dict[str, Scheme] = {
    "ibug68": Scheme("ibug68", 68, tuple(_ibug68()), (36, 45), tuple(range(36, 42)), tuple(range(42, 48))),
    "wflw98": Scheme("wflw98", 98, tuple(_wflw98()), (60, 72), (96,), (97,)),
}


def get_scheme(name: str) -> Scheme:
    """The :class:`Scheme` called ``name``; ValueError listing the known ones otherwise."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown landmark scheme {name!r}; expected one of {sorted(SCHEMES)}") from None
