"""The inpainting pipeline: regions -> coarse fill -> residual aggregation -> paste.

For each hole region (regions.py) the engine takes a square box at the photo's own
resolution, fills a small copy of it with the coarse stage, and rebuilds full-resolution
detail by contextual residual aggregation (cra.py): the residual (box minus its blurred
copy) of patches outside the hole is carried into the hole patches, weighted by their
attention. Only hole pixels are written back, so every pixel outside the mask comes back
bit-identical; a thin seam inside the hole edge matches the fill to its surroundings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from app.engine import cra
from app.engine.backends import Backend, select_backend
from app.engine.coarse import ModelCoarse, OpenCVCoarse
from app.engine.errors import BackendFailure, Cancelled, InputError
from app.engine.model_spec import DEFAULT_MODEL, load_spec
from app.engine.regions import REGION_OVERHEAD, Region, find_regions
from app.engine.settings import METHODS, InpaintSettings

Progress = Callable[[str, int, int, float], None]
Cancel = Callable[[], bool]

#: automatic residual split for OpenCV coarse fills: they are smooth above ~1/128 of the box
OPENCV_DETAIL_SIZE = 128
# the seam match works on strips of this many rows of the hole's bounding box (plus an overlap
# that makes every row exact): a few float copies of a strip, not of a 48 MP photo's box
SEAM_STRIP_ROWS = 512


@dataclass(eq=False)
class InpaintResult:
    image: np.ndarray  # RGB uint8, the whole photo
    method: str  # e.g. "model: inpaint-studio-default" or "opencv telea"
    backend: str
    regions: int = 0
    notes: list[str] = field(default_factory=list)


def validate_inputs(image: np.ndarray, mask: np.ndarray, protect: np.ndarray | None = None) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", None)
        raise InputError(f"The photo must be RGB uint8 HxWx3; got {dtype} {shape}.")
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        raise InputError(f"The mask must be a 2-D uint8 array; got shape {getattr(mask, 'shape', None)}.")
    if mask.shape != image.shape[:2]:
        raise InputError(
            f"The mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {image.shape[1]}x{image.shape[0]}."
        )
    if protect is not None and protect.shape != mask.shape:
        raise InputError("The protect mask must have the photo's size.")


def resolve_coarse(settings: InpaintSettings, backend: Backend | None):
    """Pick the coarse stage. Returns (stage, backend, backend_note, owns_backend)."""
    if settings.method not in METHODS:
        raise InputError(f"Unknown method {settings.method!r}; choose one of {', '.join(METHODS)}.")
    method = settings.method
    model_path = Path(settings.model_path) if settings.model_path else DEFAULT_MODEL
    if method == "auto":
        # without the bundled model the engine still fills (OpenCV); a model the user named
        # and that is missing is an error (load_spec says so), not a silent switch to Telea
        method = "model" if model_path.is_file() or settings.model_path else "telea"
    if method in ("telea", "ns"):
        stage = OpenCVCoarse(method, settings.coarse_size)
        if backend is None:
            backend, note = select_backend("cpu" if settings.backend == "auto" else settings.backend)
            return stage, backend, note, True
        return stage, backend, "", False
    spec = load_spec(model_path)
    owns = backend is None
    note = ""
    if backend is None:
        backend, note = select_backend(settings.backend, spec, chunk=settings.npu_chunk)
    try:
        stage = ModelCoarse(backend, spec)
    except BaseException:
        if owns:
            backend.close()
        raise
    return stage, backend, note, owns


def inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    settings: InpaintSettings | None = None,
    *,
    protect: np.ndarray | None = None,
    backend: Backend | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> InpaintResult:
    """Fill the pixels where mask > 0. `protect` > 0 marks pixels never used as a source.

    With no `backend`, one is chosen from settings.backend and closed afterwards."""
    settings = settings or InpaintSettings()
    validate_inputs(image, mask, protect)
    report = progress or (lambda *a: None)
    if cancel is not None and cancel():
        raise Cancelled("Cancelled before start.")
    hole = mask > 0
    n_hole = int(np.count_nonzero(hole))
    if n_hole == 0:
        return InpaintResult(image.copy(), "none", "none", 0, ["The mask is empty: the photo is returned unchanged."])
    source = ~hole if protect is None else ~hole & ~(protect > 0)
    if not source.any():
        if n_hole == hole.size:
            raise InputError("The mask covers the whole photo: there is nothing left to fill from.")
        raise InputError("The protected area and the mask together cover the whole photo: nothing is left to copy from.")
    stage, backend, backend_note, owns = resolve_coarse(settings, backend)
    try:
        try:
            return _run(image, hole, source, settings, stage, backend, backend_note, report, cancel)
        except BackendFailure as exc:
            if not backend.name.startswith("npu"):
                raise
            return _rerun_on_cpu(exc, image, hole, source, settings, stage, backend_note, report, cancel)
    finally:
        if owns:
            backend.close()


def _rerun_on_cpu(failure, image, hole, source, settings, stage, backend_note, report, cancel) -> InpaintResult:
    """The NPU failed during the job: run the whole job again on the CPU, and say so."""
    cpu, _ = select_backend("cpu")
    try:
        if isinstance(stage, ModelCoarse):
            stage = ModelCoarse(cpu, stage.spec)
        result = _run(image, hole, source, settings, stage, cpu, backend_note, report, cancel)
    finally:
        cpu.close()
    result.notes.append(f"The NPU failed during this job, which fell back to the CPU: {failure}")
    return result


def _run(image, hole, source, settings, stage, backend, backend_note, report, cancel) -> InpaintResult:
    report("prepare", 0, 1, 0.0)
    # a generator run costs about as much as working ~20 of its inputs' worth of box pixels
    # (measured on the CPU), so with a model scattered holes are grouped more eagerly
    overhead = 20 * stage.size * stage.size if stage.fixed_size else REGION_OVERHEAD
    regions = find_regions(
        hole, settings.context_fraction, settings.context_min_px, settings.attention_grid, overhead=overhead,
        # a hole this thin is all edge band in a tile's box, filled from its edges wherever it is cut:
        # a tile's box is about 0.6 of max_work_side and a piece's may be smaller, so a quarter
        # (QA: scratches 17-32 px wide, cut with the whole side, showed blocks at the tile borders)
        max_side=settings.max_work_side, thin_px=settings.edge_band * settings.max_work_side / 4 / stage.size,
    )
    notes = [backend_note] if backend_note else []
    out = image.copy()
    remaining = hole.copy()
    # what a region may look at and match its seam to: the source pixels and the pieces of the
    # hole filled before it (not protected pixels); the CRA sources stay the photo's own pixels
    known = source.copy()
    n = len(regions)
    # the bar moves by each region's share of the work (its box's pixels plus the cost of a
    # run), not by their count: one long scratch across a 36 MP scan is most of the time
    work = np.array([float(r.side) * r.side + overhead for r in regions])
    starts = np.concatenate([[0.0], np.cumsum(work)[:-1]]) / work.sum()
    shares = work / work.sum()
    textured = False  # some region's box was larger than the detail split: Texture had something to do
    for index, region in enumerate(regions):

        def sub(stage_name: str, k: int, total: int, within: float, _base=starts[index], _share=shares[index]) -> None:
            report(stage_name, k, total, float(_base + within * _share))

        if cancel is not None and cancel():
            raise Cancelled("Cancelled.")
        # pieces of one long hole go in order (see `known`)
        textured |= _fill_region(out, remaining, source, known, region, settings, stage, backend, out, sub, cancel)
        own = _own_mask(region)
        known[own] |= remaining[own]
        remaining[own] = False
    if is_gray(image):  # a black-and-white photo gets a black-and-white fill (the model paints in colour)
        filled = out[hole].astype(np.float32)
        out[hole] = np.rint(filled.mean(axis=1, keepdims=True)).astype(np.uint8)
    report("paste", n, n, 1.0)
    if n and not textured and settings.cra and settings.texture != InpaintSettings().texture:
        # QA: texture 0, 1 and 2 gave the same file on a 512 px photo, without a word
        notes.append("Texture made no difference here: each hole with its surroundings fits the model's own input, "
                     "so there was no finer detail of the photo to carry in.")
    return InpaintResult(out, stage.label, backend.name, n, notes)


def is_gray(image: np.ndarray) -> bool:
    """Whether the three channels of `image` are equal everywhere (a gray photo shown as RGB)."""
    return bool(np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 0], image[:, :, 2]))


def _own_mask(region: Region) -> tuple[slice, slice]:
    """Slices of the rectangle whose hole pixels this region fills."""
    ox0, oy0, ox1, oy1 = region.own
    return slice(max(oy0, 0), max(oy1, 0)), slice(max(ox0, 0), max(ox1, 0))


def _crop_padded(arr: np.ndarray, region: Region, fill_reflect: bool) -> np.ndarray:
    """The region's box out of `arr`; parts past the photo are reflected (images) or 0."""
    h, w = arr.shape[:2]
    x0, y0, x1, y1 = region.box
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    crop = arr[cy0:cy1, cx0:cx1]
    pads = (cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1)
    if not any(pads):
        return crop
    border = cv2.BORDER_REFLECT_101 if fill_reflect else cv2.BORDER_CONSTANT
    if fill_reflect and (min(crop.shape[:2]) < 2 or max(pads) >= min(crop.shape[:2])):
        border = cv2.BORDER_REPLICATE  # reflection needs more pixels than the pad
    return cv2.copyMakeBorder(crop, *pads, border, value=0)


def _fill_region(image, hole, source, known, region: Region, settings, stage, backend, out, report, cancel) -> bool:
    """Fill one region's hole pixels in `out`; True when its box is larger than the detail split,
    where Texture says how much of the photo's own detail is carried in."""
    grid = settings.attention_grid
    side = region.side
    box_img = _crop_padded(image, region, True).astype(np.float32)
    # reflected like the photo, so an object mirrored into the padding is hole there too
    box_hole = _crop_padded(hole.view(np.uint8), region, True) > 0
    box_source = _crop_padded(source.view(np.uint8), region, False) > 0  # padding is no source
    # what the coarse stage may not look at: the hole and the protected pixels (reflected as
    # the photo is), so a protected object is never continued into the fill, at any hole size;
    # pieces of a long hole filled before this one are seen, so the pieces join
    box_unknown = _crop_padded(known.view(np.uint8), region, True) == 0
    report("prepare", 0, 1, 0.05)

    # bounded memory: a huge box is worked at reduced scale, pasted back upsampled
    work = side
    if side > settings.max_work_side:
        work = max(grid, (settings.max_work_side // grid) * grid)
        box_img = cv2.resize(box_img, (work, work), interpolation=cv2.INTER_AREA)
        box_hole = cv2.resize(box_hole.view(np.uint8), (work, work), interpolation=cv2.INTER_AREA) > 0
        # a source only where every pixel it stands for is one: an averaged-in protected pixel
        # must not be carried into the fill
        box_source = cv2.resize(box_source.view(np.uint8) * np.uint8(255), (work, work),
                                interpolation=cv2.INTER_AREA) == 255
        box_source &= ~box_hole
        box_unknown = cv2.resize(box_unknown.view(np.uint8), (work, work), interpolation=cv2.INTER_AREA) > 0

    size = stage.size if stage.fixed_size else min(stage.size, work)
    small = cv2.resize(box_img, (size, size), interpolation=cv2.INTER_AREA)
    # conservative: a small pixel touching any hole pixel is hole, so the object's colours
    # never leak into the coarse input
    small_hole = cv2.resize(box_unknown.view(np.uint8).astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) > 0
    report("model", 0, 1, 0.1)
    coarse_out = stage.run(small, small_hole)
    if cancel is not None and cancel():
        raise Cancelled("Cancelled after the coarse stage.")
    coarse = np.where(small_hole[:, :, None], coarse_out.image, small)
    report("model", 1, 1, 0.4)

    # the split between the coarse fill's structure and the photo's own detail: below
    # detail_size the coarse fill is trusted, above it detail comes from the photo
    detail = min(size, settings.detail_size or (size if stage.fixed_size else OPENCV_DETAIL_SIZE))
    if settings.cra and settings.texture > 0 and work > detail:
        base = coarse if detail == size else cv2.resize(coarse, (detail, detail), interpolation=cv2.INTER_AREA)
        low = small if detail == size else cv2.resize(small, (detail, detail), interpolation=cv2.INTER_AREA)
        large = cv2.resize(base, (work, work), interpolation=cv2.INTER_LINEAR)
        _fill_edge_band(large, box_img, box_hole, box_unknown, settings.edge_band, work / size)
        # in place, and the box image released: box-sized float copies less at the peak
        residual = cv2.resize(low, (work, work), interpolation=cv2.INTER_LINEAR)
        np.subtract(box_img, residual, out=residual)
        del box_img
        _aggregate_residual(
            large, residual, box_hole, box_source, coarse, coarse_out.attention, grid, work, detail, settings, backend,
            report, cancel,
        )
    else:
        large = cv2.resize(coarse, (work, work), interpolation=cv2.INTER_LINEAR)
        _fill_edge_band(large, box_img, box_hole, box_unknown, settings.edge_band, work / size)
    np.clip(large, 0, 255, out=large)
    if work != side:
        large = cv2.resize(large, (side, side), interpolation=cv2.INTER_CUBIC)
    report("paste", 0, 1, 0.8)  # with the seam matched strip by strip: a long scratch's paste takes seconds
    _paste(image, hole, known, region, large, settings.feather_px, out,
           lambda done, rows: report("paste", 0, 1, 0.8 + 0.2 * done / rows))  # (k/n: of regions, not strips)
    return work > detail


#: the edge band is used where the coarse stage saw the box at half resolution or less: on
#: 1024 px photos (boxes 2-3x the model's input) it gained 0.01-0.15 dB in every hole band of
#: bench/quality.py's masks, while on 481 px photos (1.25x) the network's own edge was 0.09 dB better
EDGE_MIN_SCALE = 2.0


def _fill_edge_band(large, box_img, box_hole, box_unknown, band_px: float, scale: float) -> None:
    """Replace the fill within `band_px` coarse pixels (`scale` px each) of the known pixels by
    OpenCV Telea at the work resolution, drawn from the photo's edge and the coarse fill further
    in: a scratch narrower than a few coarse pixels comes back as sharp as the photo around it,
    not as a blurred band."""
    if band_px <= 0 or scale < EDGE_MIN_SCALE:  # the coarse stage saw the box at (nearly) full resolution
        return
    reach = band_px * scale
    inside = cv2.distanceTransform(box_unknown.view(np.uint8), cv2.DIST_L2, 3)
    band = box_hole & (inside > 0) & (inside <= reach)
    if not band.any():
        return
    ys, xs = np.nonzero(band)
    pad = int(np.ceil(reach)) + 6  # Telea's radius of 5 px, and a pixel to spare
    h, w = band.shape
    y0, y1, x0, x1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, h), max(xs.min() - pad, 0), min(xs.max() + pad + 1, w)
    sl = (slice(y0, y1), slice(x0, x1))
    # the pixels Telea may draw from: the photo where known, the coarse fill deeper in the hole
    # (built in 8 bits: float copies of a 4096 px box would be 200 MB each)
    known = ~box_unknown[sl][:, :, None]
    photo = cv2.convertScaleAbs(box_img[sl])
    given = cv2.convertScaleAbs(large[sl])
    np.copyto(given, photo, where=known)
    filled = cv2.inpaint(given, band[sl].view(np.uint8), 5, cv2.INPAINT_TELEA)
    region = large[sl]
    np.copyto(region, filled, where=band[sl][:, :, None])
    # and the photo itself around it: the seam match then sees no offset to spread into the band
    np.copyto(region, photo, where=known)


def _aggregate_residual(large, residual, box_hole, box_source, coarse, model_attention, grid, work, size, settings,
                        backend, report, cancel) -> None:
    if model_attention is not None:
        grid = int(round(model_attention.shape[0] ** 0.5))
    # the upsampled small copy smears hole colours about one small pixel outwards;
    # patches within that reach carry a polluted residual and are no source
    reach = int(np.ceil(work / size)) + 1
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    polluted = cv2.dilate(box_hole.view(np.uint8), kernel) > 0
    rows = np.flatnonzero(cra.patch_any(box_hole, grid))
    cols = np.flatnonzero(~cra.patch_any(polluted | ~box_source, grid))
    if len(rows) == 0 or len(cols) == 0:
        return
    # the detail energy each patch should carry (that of the photo around it), when used:
    # to steer the computed attention and/or to scale what it carries
    steer = model_attention is None and settings.energy_weight > 0
    wanted = cra.target_energy(residual, ~polluted & box_source, grid) if steer or settings.match_energy else None
    bias = cra.energy_bias(wanted[cols], wanted[rows], settings.energy_weight) if steer else None
    if model_attention is not None:
        attention = cra.renormalise(model_attention, rows, cols)
    else:
        attention = cra.compute_attention(
            coarse, grid, rows, cols, settings.attention_scale, settings.attention_peak, bias=bias
        )
    sources = cra.gather_patches(residual, grid, cols)
    done = cra.aggregate(
        attention,
        sources,
        backend.matmul,
        settings.chunk_columns,
        on_chunk=lambda k, n: report("aggregate", k, n, 0.4 + 0.4 * k / n),
        cancel=cancel,
    )
    # no more grain than the surroundings have (no tree texture in the sky), times `texture`
    if settings.match_energy:
        done *= cra.energy_gains(done, wanted[rows], 1.0)[:, None]
    if settings.texture != 1.0:
        done *= np.float32(settings.texture)
    cra.add_to_patches(large, grid, rows, done)


def _paste(image, hole, known, region: Region, large, feather: int, out, strip_done=None) -> None:
    """Write the fill into `out` at the region's own hole pixels only; the seam is matched to
    the `known` pixels around it (the photo and earlier pieces; not a protected object).
    `strip_done(rows done, rows)` follows the seam matching."""
    h, w = hole.shape
    x0, y0, x1, y1 = region.box
    # the part of the box inside the photo
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    fill = large[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    orig = image[cy0:cy1, cx0:cx1]
    box_hole, box_known = hole[cy0:cy1, cx0:cx1], known[cy0:cy1, cx0:cx1]
    ox0, oy0, ox1, oy1 = region.own
    own = np.zeros_like(box_hole)
    own[max(oy0 - cy0, 0) : max(oy1 - cy0, 0), max(ox0 - cx0, 0) : max(ox1 - cx0, 0)] = True
    own &= box_hole
    if not own.any():
        return
    target = out[cy0:cy1, cx0:cx1]
    if feather > 0:
        # only a band around this region's hole can change: work in its bounding box
        ys, xs = np.nonzero(own)
        pad = feather + 3
        by0, by1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, own.shape[0])
        bx0, bx1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, own.shape[1])
        band = (slice(by0, by1), slice(bx0, bx1))
        fill, orig, box_hole, own, target = fill[band], orig[band], box_hole[band], own[band], target[band]
        box_known = box_known[band]
        # a row's seam depends on the rows within 2 * feather + 2 (ring, blur, distance)
        overlap = 2 * feather + 4
        for s0 in range(0, own.shape[0], SEAM_STRIP_ROWS):
            s1 = min(s0 + SEAM_STRIP_ROWS, own.shape[0])
            e0, e1 = max(s0 - overlap, 0), min(s1 + overlap, own.shape[0])
            matched = _match_seam(fill[e0:e1], orig[e0:e1], box_hole[e0:e1], box_known[e0:e1], own[e0:e1],
                                  feather)[s0 - e0 : s1 - e0]
            here = own[s0:s1]
            target[s0:s1][here] = np.clip(np.rint(matched[here]), 0, 255).astype(np.uint8)
            if strip_done is not None:
                strip_done(s1, own.shape[0])
        return
    target[own] = np.clip(np.rint(fill[own]), 0, 255).astype(np.uint8)


def _match_seam(fill, orig, box_hole, box_known, own, feather: int) -> np.ndarray:
    """Shift the fill near the hole edge by the colour offset between the photo and the fill
    just outside the edge, fading to nothing `feather` px inside: no visible step at the
    boundary, and no pixel outside the hole touched."""
    ring_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * feather + 3, 2 * feather + 3))
    ring = (cv2.dilate(own.view(np.uint8), ring_kernel) > 0) & box_known
    if not ring.any():
        return fill
    ringf = ring.astype(np.float32)
    offset = (orig.astype(np.float32) - fill) * ringf[:, :, None]
    k = 2 * feather + 3
    num = cv2.blur(offset, (k, k))
    den = cv2.blur(ringf, (k, k))
    spread = np.where(den[:, :, None] > 1e-3, num / np.maximum(den, 1e-3)[:, :, None], 0)
    inside = cv2.distanceTransform(box_hole.view(np.uint8), cv2.DIST_L2, 3)
    weight = np.clip(1.0 - (inside - 1.0) / feather, 0.0, 1.0) * own
    return fill + spread * weight[:, :, None]
