"""Where a vertebral body lies in a mask of whole vertebrae: its thick part.

A whole vertebra's centroid (TotalSegmentator's vertebrae, VerSe/TPTBox ``vert_msk``) lies near the canal, about
10 mm behind the body a radiologist clicks and the patches are cut at. The body is the one part of a vertebra
thicker than its pedicles, arches and processes: an opening of the label with a ball of ``THICK_PART`` of the
label's largest inscribed radius keeps the body and drops them, and its centroid is the body's (docs/RESULTS.md,
"Where a mask of whole vertebrae puts the body"). A label whose centroid lies deep inside it already is a body
(MRI masks, TotalSegmentator's refined bodies, TPTBox's body subregions) and keeps its centroid exactly.

Arrays here are indexed like the volumes' (``[k, j, i]``), with ``spacing`` per array axis.
"""

from __future__ import annotations

import numpy as np

THICK_PART = 0.7  # ball radius of the opening, as a share of the label's largest inscribed radius
PART_OF_LARGEST = 0.25  # core components smaller than this share of the largest are processes, not body
DEEP_CENTROID = 0.6  # a centroid this deep (share of that radius) lies inside a body: the mask is one already


def _large_components(region: np.ndarray) -> np.ndarray:
    """``region`` without its connected components smaller than ``PART_OF_LARGEST`` of the largest (a body split
    by its mask's gap keeps both halves)."""
    from scipy import ndimage

    components, count = ndimage.label(region)
    if count < 2:
        return region
    sizes = ndimage.sum(region, components, range(1, count + 1))
    return np.isin(components, 1 + np.flatnonzero(sizes >= PART_OF_LARGEST * sizes.max()))


def thick_part(voxels: np.ndarray, depth: np.ndarray, spacing) -> np.ndarray:
    """The opening of ``voxels`` (``depth``: their distance transform in mm) by a ball of ``THICK_PART`` of their
    largest inscribed radius, around the core's large components: what stays of a vertebra is its body."""
    from scipy import ndimage

    radius = THICK_PART * depth.max()
    core = _large_components(depth >= radius)
    return (ndimage.distance_transform_edt(~core, sampling=spacing) <= radius) & voxels


def is_body(voxels: np.ndarray, depth: np.ndarray) -> bool:
    """Whether ``voxels`` are a body already: their centroid lies deep inside them (a whole vertebra's lies in or
    near the canal)."""
    from scipy import ndimage

    centroid = np.asarray(ndimage.center_of_mass(voxels), dtype=np.float64)
    return float(ndimage.map_coordinates(depth, centroid[:, None], order=1)[0]) >= DEEP_CENTROID * depth.max()


def body_centroids(labels: np.ndarray, wanted: list[int], spacing) -> dict[int, np.ndarray]:
    """Continuous array index of the body's centroid for each ``wanted`` id of the integer array ``labels``: the
    label's own centroid when it is a body, else its thick part's."""
    from scipy import ndimage

    boxes = ndimage.find_objects(labels, max_label=max(wanted, default=0))
    centroids = {}
    for label in wanted:
        box = boxes[label - 1]
        voxels = np.pad(labels[box] == label, 1)  # a background rim, so the border is a boundary
        depth = ndimage.distance_transform_edt(voxels, sampling=spacing)
        region = voxels if is_body(voxels, depth) else thick_part(voxels, depth, spacing)
        start = np.array([s.start for s in box], dtype=np.float64) - 1
        centroids[label] = np.asarray(ndimage.center_of_mass(region), dtype=np.float64) + start
    return centroids
