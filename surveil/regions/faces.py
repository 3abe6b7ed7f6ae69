"""Faces inside person regions (YuNet), carved out as regions of their own.

A face becomes a child region of its person (``parent_id``) and takes its pixels from the person's mask, so every
pixel still belongs to one region. The face travels under its own topic (``<camera>/obj/face``): a station that is
not cleared for faces does not subscribe to it and shows the background where the face was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from surveil.config import FacesConfig
from surveil.errors import SurveilError
from surveil.paths import find_in, weights_path
from surveil.types import Box, Region

logger = logging.getLogger(__name__)

FACE_LABEL = "face"


@dataclass(frozen=True)
class FaceBox:
    box: Box  # frame pixels, exclusive upper bounds, the detector's box grown by the configured margin
    score: float


class FaceFinder:
    """YuNet (OpenCV's ``FaceDetectorYN``) on a window of an RGB image, upscaled so small faces are still found."""

    def __init__(self, settings: FacesConfig) -> None:
        self.settings = settings
        found = find_in(weights_path(), settings.weights)
        if found is None:
            searched = ", ".join(str(p) for p in weights_path())
            raise SurveilError(f"face detector weights not found: {settings.weights} (searched {searched})")
        try:
            self._yunet = cv2.FaceDetectorYN.create(str(found), "", (320, 320), settings.score, 0.3, 50)
        except cv2.error as exc:
            raise SurveilError(f"cannot load face detector weights {found}: {exc}") from exc

    def find(self, image: np.ndarray, window: Box | None = None) -> list[FaceBox]:
        """Faces found in ``window`` of ``image`` (the whole image by default), best first, in image pixels."""
        height, width = image.shape[:2]
        x0, y0, x1, y1 = window or (0, 0, width, height)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return []
        # YuNet's smallest anchors are about 10 px: bring the window up to the search size when it is smaller.
        scale = max(1.0, self.settings.search_px / max(x1 - x0, y1 - y0))
        crop = np.ascontiguousarray(image[y0:y1, x0:x1, ::-1])  # YuNet takes BGR
        if scale > 1.0:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        self._yunet.setInputSize((crop.shape[1], crop.shape[0]))
        _, rows = self._yunet.detect(crop)
        faces = []
        for row in [] if rows is None else rows:
            fx, fy, fw, fh = (float(v) / scale for v in row[:4])
            if min(fw, fh) < self.settings.min_size_px:
                continue
            grow_x, grow_y = fw * self.settings.margin, fh * self.settings.margin
            box = (  # may reach past the window (a face cut by its edge), never past the image
                max(0, int(np.floor(x0 + fx - grow_x))),
                max(0, int(np.floor(y0 + fy - grow_y))),
                min(width, int(np.ceil(x0 + fx + fw + grow_x))),
                min(height, int(np.ceil(y0 + fy + fh + grow_y))),
            )
            if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                faces.append(FaceBox(box, float(row[-1])))
        return sorted(faces, key=lambda f: -f.score)


def carve_faces(
    image: np.ndarray, regions: list[Region], finder: FaceFinder, codec_class: str, min_area_px: int
) -> list[Region]:
    """``regions`` with each person's faces moved into child regions appended after them.

    The face takes the person's mask pixels inside the face box (never background or another region's pixels); a
    face with fewer than ``min_area_px`` such pixels stays with its person. A person left with no pixels of its own
    (a head and shoulders shot) is dropped and its face has no parent.
    """
    faces: list[Region] = []
    next_id = max((r.region_id for r in regions), default=-1) + 1
    for person in [r for r in regions if r.label == "person"]:
        px0, py0, px1, py1 = person.box
        # The head is in the top part of a standing person, and anywhere in a head-and-shoulders view.
        head_height = max((py1 - py0) * finder.settings.head_fraction, px1 - px0)
        head_window = (px0, py0, px1, min(py1, py0 + max(4, int(np.ceil(head_height)))))
        for face in finder.find(image, head_window):
            fx0, fy0 = max(face.box[0], px0), max(face.box[1], py0)
            fx1, fy1 = min(face.box[2], px1), min(face.box[3], py1)
            if fx1 <= fx0 or fy1 <= fy0:
                continue
            in_box = person.mask[fy0 - py0 : fy1 - py0, fx0 - px0 : fx1 - px0]
            if int(in_box.sum()) < min_area_px:
                continue
            ys, xs = np.nonzero(in_box)
            ty0, ty1, tx0, tx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            face_mask = in_box[ty0:ty1, tx0:tx1].copy()
            box = (fx0 + int(tx0), fy0 + int(ty0), fx0 + int(tx1), fy0 + int(ty1))
            person.mask[box[1] - py0 : box[3] - py0, box[0] - px0 : box[2] - px0] &= ~face_mask
            faces.append(
                Region(
                    region_id=next_id,
                    label=FACE_LABEL,
                    codec_class=codec_class,
                    score=face.score,
                    box=box,
                    mask=face_mask,
                    parent_id=person.region_id,
                )
            )
            next_id += 1
    emptied = {r.region_id for r in regions if not r.mask.any()}
    for face in faces:
        if face.parent_id in emptied:
            face.parent_id = None
    return [r for r in regions if r.region_id not in emptied] + faces
