"""Restore = propose damage -> fill it with the engine -> optional tone/noise repair.

Qt-free; the command line calls `restore`, the editor runs the same steps one by one so
the user can edit the proposed mask before the fill.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from app.engine import Cancelled, InpaintSettings, inpaint
from app.engine.pipeline import is_gray
from app.io.images import ImageMeta, deep_pixels, to_8_bit
from app.restore.detect import DEFAULT_DETECTOR, DEFAULT_SENSITIVITY, KINDS, analyse_damage, parse_kinds, propose_damage
from app.restore.repair import RepairSteps, apply_repairs

#: damage is filled by the editor's own pipeline (the model, then the photo's grain carried in by
#: CRA, as much as the Texture setting says): OpenCV Telea alone, used before, scored 0.06 dB
#: higher restore PSNR on the dev set (33.00 against 32.94) but left every scratch a smooth band
#: across grain, grass or brick (fill of the true damage: high-frequency energy 0.34 of the
#: photo's, the model's 0.98) and smeared tears; in the editor the Run panel's Method and
#: Texture choose (Texture 0: a smooth fill)
FILL_SETTINGS = InpaintSettings()


@dataclass(eq=False)
class RestoreResult:
    image: np.ndarray  # RGB uint8
    mask: np.ndarray  # the damage that was filled, uint8 0/255
    method: str = ""
    notes: list[str] = field(default_factory=list)
    # the result's 16-bit pixels (a 16-bit scan repaired at 16 bits; `repair_deep`), else None
    deep: np.ndarray | None = None

    def meta_of(self, meta: ImageMeta) -> ImageMeta:
        """The photo's `meta` for writing this result: with the repaired 16-bit pixels."""
        return meta if self.deep is None else replace(meta, deep=self.deep)


def repair_deep(rgb: np.ndarray, deep: np.ndarray | None, steps: RepairSteps) -> tuple[np.ndarray, np.ndarray | None]:
    """`apply_repairs` of the photo `rgb` (RGB uint8) whose 16-bit source is `deep`
    (ImageMeta.deep, or None): the steps run on its 16-bit pixels (`deep_pixels`: the source's
    value wherever `rgb` still holds it), and the result comes back in 8 bits with its 16-bit
    pixels, which become the photo's 16-bit source (the same layout: one channel for a gray scan
    that stays gray, the source's alpha kept). Without a 16-bit source: (apply_repairs, None)."""
    sixteen = deep_pixels(rgb, ImageMeta(deep=deep))
    if sixteen is None:
        return apply_repairs(rgb, steps), None
    colour = cv2.cvtColor(sixteen, cv2.COLOR_GRAY2RGB) if sixteen.shape[2] == 1 else sixteen[:, :, :3]
    repaired = apply_repairs(np.ascontiguousarray(colour), steps)
    if deep.shape[2] == 1 and is_gray(repaired):
        kept = repaired[:, :, :1]
    elif deep.shape[2] == 4:
        kept = np.dstack([repaired, deep[:, :, 3]])
    else:
        kept = repaired
    kept = np.ascontiguousarray(kept)
    kept.flags.writeable = False  # a source is never edited (ImageMeta.deep)
    return to_8_bit(repaired), kept


def fill_damage(rgb: np.ndarray, mask: np.ndarray, settings: InpaintSettings = FILL_SETTINGS,
                progress=None, cancel=None, backend=None):
    """Fill `mask` through the engine (on `backend`, or one chosen and closed for this fill);
    an empty mask returns a copy and no engine run."""
    if not mask.any():
        return rgb.copy(), "nothing to fill", []
    result = inpaint(rgb, mask, settings, backend=backend, progress=progress, cancel=cancel)
    return result.image, result.method, list(result.notes)


def restore(
    rgb: np.ndarray,
    kinds=KINDS,
    sensitivity: float = DEFAULT_SENSITIVITY,
    steps: RepairSteps | None = None,
    settings: InpaintSettings = FILL_SETTINGS,
    *,
    mask: np.ndarray | None = None,
    detector: str = DEFAULT_DETECTOR,
    model=None,
    backend=None,
    progress=None,
    cancel=None,
    deep: np.ndarray | None = None,
) -> RestoreResult:
    """The whole restore. `mask` (given) replaces detection; `detector` and `model`: see
    analyse_damage (when "auto" falls back to the hand-made filters, the notes say why);
    `backend`: the fill's (many photos share one loaded model); `deep`: the photo's 16-bit
    source (ImageMeta.deep), which the repairs then work on (`repair_deep`)."""
    detection_notes = []
    fill_progress = progress
    if mask is None:
        kinds = parse_kinds(kinds)
        mask = np.zeros(rgb.shape[:2], np.uint8)
        if kinds:
            # the analysis is most of a restore's time (half a minute on 12 MP): its own stage, the
            # first half of the bar
            detecting = None if progress is None else (lambda f: progress("Detecting damage", 0, 1, 0.5 * f))
            analysis = analyse_damage(rgb, kinds, cancel=cancel, detector=detector, model=model, progress=detecting)
            mask = None if analysis is None else propose_damage(analysis, kinds, sensitivity, cancel=cancel)
            if analysis is not None and analysis.note:
                detection_notes.append(analysis.note)
            if progress is not None:  # the fill is the second half of the bar

                def fill_progress(stage, k, n, f):
                    progress(stage, k, n, 0.5 + 0.5 * f)

        if mask is None:
            raise Cancelled("Restore cancelled.")
    filled, method, notes = fill_damage(rgb, mask, settings, fill_progress, cancel, backend)
    notes = detection_notes + notes
    out, out_deep = repair_deep(filled, deep, steps) if steps is not None and steps.any else (filled, None)
    return RestoreResult(image=out, mask=mask, method=method, notes=notes, deep=out_deep)
