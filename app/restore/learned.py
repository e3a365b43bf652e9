"""The learned damage detector: a small convolutional net (models/damage_detector.onnx,
trained by tools/train_detector.py on synthetic damage) that gives per pixel the
probability of each damage kind. The sensitivity then only thresholds these maps.

The net runs once per photo in tiles (bounded memory on 12 MP photos); each tile is read
with a margin of context around it so that tiled and whole-photo maps agree.
Qt-free; onnxruntime is imported when a model is first loaded.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from app.engine.errors import ModelError

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "damage_detector.onnx"
# the same four nets trained on with wider damage (models/damage_detector.md, "Wide damage"): every
# photo is also looked at by it, the two proposals joined (alone it missed a quarter of the dark
# specks the shipped file finds on a real scan). A print scanned at 600-1200 dpi has scratches
# 3-10 px wide, where the shipped nets stop at about 4.5 px (on a 4500x3000 crop of a real scan:
# 5 px lines 0.22 / 0.01 found, bright / dark, against 1.00 / 1.00; bench damage drawn 2x wider
# on it: recall 0.79-0.84 against 0.91-0.95): from WIDE_FROM_SIDE on it proposes at its own
# calibrated threshold. On smaller photos the damage is as thin as the shipped file was trained
# on, and joined as it is the wide file cost precision (city photos 0.790 against 0.825, 0.50 %
# clean pixels flagged): there it adds only what it is surer of, its threshold SMALL_PHOTO_MARGIN
# logits higher (one value, tried once after the plain join's figures): city photos precision / recall /
# clean flagged 0.813 / 0.807 / 0.43 % against the shipped file's 0.825 / 0.795 / 0.39 %
WIDE_MODEL = DEFAULT_MODEL.with_name("damage_detector_wide.onnx")
WIDE_FROM_SIDE = 3000
SMALL_PHOTO_MARGIN = 1.0
CONTRACT = "damage-probability"
TILE = 1024  # px of output per tile side
MARGIN = 128  # px of context read around each tile: half the net's receptive field (~250 px)
# a colour cast (the largest channel weight of repair.cast_estimate, as |log|) above which the
# photo is also analysed balanced: about a third of natural photos (the bench's median is 0.03-0.07,
# its 90th percentile 0.10-0.16) and every yellowed or tinted scan; chosen on the dev set
STRONG_CAST = 0.1


@dataclass(frozen=True)
class DetectorModel:
    """A loaded detector: the onnxruntime session and what its sidecar says."""

    path: Path
    session: object
    input_name: str
    output_name: str
    channels: tuple[str, ...]  # damage kind of each output channel
    threshold_at_default: float  # probability threshold at the default sensitivity (0.5)
    stride: int  # input sides must be multiples of this
    low_ratio: float = 1.0  # hysteresis: regions above low_ratio * threshold that reach the threshold
    grow_px: int = 1  # px the proposal is grown by (calibrated with the thresholds)
    # per-kind thresholds at the default sensitivity where the sidecar gives them (kind, threshold)
    kind_thresholds: tuple[tuple[str, float], ...] = ()
    threads: int = 0  # onnxruntime threads it was loaded with (0 = its default)

    def threshold_for(self, kind: str) -> float:
        """The probability threshold of `kind` at the default sensitivity."""
        return dict(self.kind_thresholds).get(kind, self.threshold_at_default)


def load_detector(path: str | Path | None = None, threads: int = 0) -> DetectorModel:
    """Load a detector ONNX file and its JSON sidecar (same name, .json). Raises ModelError
    with a message saying what is wrong (missing, unreadable, wrong contract)."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    sidecar = path.with_suffix(".json")
    if not path.is_file():
        raise ModelError(f"No damage detector model at {path.name} (expected in the models folder).")
    if not sidecar.is_file():
        raise ModelError(f"The damage detector {path.name} has no sidecar {sidecar.name}.")
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"The sidecar {sidecar.name} is not readable JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("contract") != CONTRACT:
        raise ModelError(f"The sidecar {sidecar.name} does not describe a damage detector "
                         f"(contract {meta.get('contract') if isinstance(meta, dict) else None!r}, "
                         f"expected {CONTRACT!r}).")
    try:
        channels = tuple(str(c) for c in meta["channels"])
        threshold = float(meta["threshold_at_default"])
        stride = int(meta.get("stride", 1))
        low_ratio = float(meta.get("hysteresis_low_ratio", 1.0))
        # sidecars written before the growth was calibrated were calibrated with 1 px
        grow_px = int(meta.get("proposal_grow_px", 1))
        # optional: one threshold per kind (calibrated together); the kinds it omits use the common one
        per_kind = tuple((str(k), float(v)) for k, v in meta.get("thresholds_at_default", {}).items())
        input_name = str(meta["inputs"]["image"])
        output_name = str(meta["outputs"]["logits"])
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"The sidecar {sidecar.name} lacks a field or has a bad value: {exc}") from exc
    if (not 0.0 < threshold < 1.0 or stride < 1 or not channels or not 0.0 < low_ratio <= 1.0
            or not 0 <= grow_px <= 8 or any(k not in channels or not 0.0 < t < 1.0 for k, t in per_kind)):
        raise ModelError(f"The sidecar {sidecar.name} has out-of-range values (threshold {threshold}, "
                         f"thresholds_at_default {dict(per_kind)}, stride {stride}, channels {channels}, "
                         f"hysteresis_low_ratio {low_ratio}, proposal_grow_px {grow_px}).")
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"Cannot load the damage detector {path.name}: {first}") from exc
    names_in = [i.name for i in session.get_inputs()]
    names_out = [o.name for o in session.get_outputs()]
    if input_name not in names_in or output_name not in names_out:
        raise ModelError(f"The damage detector {path.name} does not match its sidecar "
                         f"(inputs {names_in}, outputs {names_out}).")
    return DetectorModel(path=path, session=session, input_name=input_name, output_name=output_name,
                         channels=channels, threshold_at_default=threshold, stride=stride, low_ratio=low_ratio,
                         grow_px=grow_px, kind_thresholds=per_kind, threads=threads)


_loaded: dict[tuple[Path, int], DetectorModel | ModelError] = {}
_loaded_lock = threading.Lock()


def _load_once(path: Path, threads: int) -> DetectorModel:
    """A shipped model, loaded once per process (a failure is remembered, not retried)."""
    with _loaded_lock:
        if (path, threads) not in _loaded:
            try:
                _loaded[path, threads] = load_detector(path, threads)
            except ModelError as exc:
                _loaded[path, threads] = exc
        got = _loaded[path, threads]
    if isinstance(got, ModelError):
        raise got
    return got


def default_detector(threads: int = 0) -> DetectorModel:
    """The shipped detector, loaded once per process."""
    return _load_once(DEFAULT_MODEL, threads)


def detectors_for(model: DetectorModel, shape: tuple[int, ...]) -> tuple[DetectorModel, ...]:
    """The detectors to look at a photo of `shape` with: `model` and the shipped model's wide
    sibling (WIDE_MODEL), their proposals joined (`either_probability`); on a photo whose long
    side is under WIDE_FROM_SIDE the wide one at a stricter threshold (SMALL_PHOTO_MARGIN). A
    model the user chose is used alone, and without the wide file the shipped one does it all."""
    if model.path != DEFAULT_MODEL:
        return (model,)
    try:
        wide = _load_once(WIDE_MODEL, model.threads)
    except ModelError:
        return (model,)
    return (model, wide if max(shape[:2]) >= WIDE_FROM_SIDE else stricter(wide, SMALL_PHOTO_MARGIN))


def stricter(model: DetectorModel, logits: float) -> DetectorModel:
    """`model` with each threshold `logits` higher in logit (where the sensitivity moves them)."""

    def raised(threshold: float) -> float:
        t = float(np.clip(threshold, 1e-4, 1 - 1e-4))
        return float(1.0 / (1.0 + np.exp(-(np.log(t / (1.0 - t)) + logits))))

    return replace(model, threshold_at_default=raised(model.threshold_at_default),
                   kind_thresholds=tuple((kind, raised(t)) for kind, t in model.kind_thresholds))


def either_probability(maps: list[np.ndarray], thresholds: list[float]) -> np.ndarray:
    """One uint8 probability map, thresholded at 0.5, that is above the threshold wherever any of
    `maps` is above its own, at every sensitivity: each map's logit is shifted by its threshold's
    (the sensitivity shifts every logit alike, probability_threshold) and the highest is kept.
    Worked through 256-entry tables, so a 50 MP map costs no float copy."""
    b = np.clip(np.arange(256, dtype=np.float64), 0.5, 254.5) / 255.0
    out = None
    for probability, threshold in zip(maps, thresholds):
        t = float(np.clip(threshold, 1e-4, 1 - 1e-4))
        shifted = np.log(b / (1 - b)) - np.log(t / (1 - t))
        table = np.rint(255.0 / (1.0 + np.exp(-shifted))).astype(np.uint8)
        mapped = table[probability]
        out = mapped if out is None else np.maximum(out, mapped, out=out)
    return out


def probability_threshold(threshold_at_default: float, sensitivity: float) -> float:
    """The probability above which a pixel is proposed: the calibrated threshold at
    sensitivity 0.5, shifted by up to 3 in logit either way (0 = strict, 1 = flags more).
    Monotone, so a higher sensitivity never proposes less."""
    s = float(np.clip(sensitivity, 0.0, 1.0))
    t = float(np.clip(threshold_at_default, 1e-4, 1 - 1e-4))
    logit = np.log(t / (1.0 - t)) + 6.0 * (0.5 - s)
    return float(1.0 / (1.0 + np.exp(-logit)))


def damage_probability(model: DetectorModel, rgb: np.ndarray, kinds: tuple[str, ...] | None = None, *,
                       progress=None, cancel=None) -> dict[str, np.ndarray] | None:
    """Per kind, the damage probability of every pixel as uint8 (round(255 p)). `progress(f)`
    gets the done fraction; `cancel()` is polled per tile (None = gave up).

    The nets learned damage as white, grey or black marks; under a colour cast over the whole
    scan (a yellowed print, a scanner's white balance) the marks take the cast's colour and
    most go unseen (bench/restore.py --cast: recall 0.84 -> 0.23). A photo with a strong cast
    is looked at twice, as it is and with the cast divided out (repair.balanced_by), and each
    pixel keeps the higher probability: the marks are found in whichever they look neutral."""
    from app.restore.repair import balanced_by, cast_estimate

    cast = cast_estimate(rgb)
    # (a channel all but missing, a cyanotype or a black frame: nothing to balance)
    if np.abs(np.log(cast)).max() <= STRONG_CAST or cast.min() < 0.05:
        return _probability(model, rgb, kinds, progress, cancel)
    half = (lambda start: (lambda f: progress(start + f / 2))) if progress is not None else (lambda start: None)
    plain = _probability(model, rgb, kinds, half(0.0), cancel)
    balanced = None if plain is None else _probability(model, balanced_by(rgb, cast), kinds, half(0.5), cancel)
    if balanced is None:
        return None
    return {k: np.maximum(plain[k], balanced[k]) for k in plain}


def _probability(model: DetectorModel, rgb: np.ndarray, kinds: tuple[str, ...] | None, progress,
                 cancel) -> dict[str, np.ndarray] | None:
    kinds = model.channels if kinds is None else kinds
    unknown = [k for k in kinds if k not in model.channels]
    if unknown:
        raise ModelError(f"The damage detector {model.path.name} has no output for {', '.join(unknown)}.")
    import cv2

    h, w = rgb.shape[:2]
    s = model.stride
    # reflect-pad the photo by the margin, and its far sides up to a multiple of the stride
    padded = cv2.copyMakeBorder(np.ascontiguousarray(rgb), MARGIN, MARGIN + (-h % s), MARGIN, MARGIN + (-w % s),
                                cv2.BORDER_REFLECT_101)
    out = {k: np.empty((h, w), np.uint8) for k in kinds}
    index = [model.channels.index(k) for k in kinds]
    tiles = [(y, x) for y in range(0, h, TILE) for x in range(0, w, TILE)]
    for n, (y, x) in enumerate(tiles):
        if cancel is not None and cancel():
            return None
        th, tw = min(TILE, h - y), min(TILE, w - x)
        ih, iw = th + (-th % s) + 2 * MARGIN, tw + (-tw % s) + 2 * MARGIN
        tile = padded[y : y + ih, x : x + iw]
        feed = np.ascontiguousarray(tile.transpose(2, 0, 1)[None], dtype=np.float32) * np.float32(1.0 / 255.0)
        logits = model.session.run([model.output_name], {model.input_name: feed})[0][0]
        for k, c in zip(kinds, index):
            core = logits[c, MARGIN : MARGIN + th, MARGIN : MARGIN + tw]
            p = 1.0 / (1.0 + np.exp(-np.clip(core, -30.0, 30.0)))
            out[k][y : y + th, x : x + tw] = np.rint(p * 255.0).astype(np.uint8)
        if progress is not None:
            progress((n + 1) / len(tiles))
    return out


def propose_from_probability(maps: list[np.ndarray], threshold: float, low_ratio: float, dilate: int) -> np.ndarray:
    """The proposal (uint8 HxW, 255 = damage) from uint8 probability maps (round(255 p)):
    hysteresis on their maximum - the connected regions above low_ratio * threshold that
    somewhere exceed the threshold (a faint stretch of a scratch stays with its strong
    part; a faint isolated blotch does not) - grown by `dilate` px."""
    import cv2

    p = maps[0] if len(maps) == 1 else np.maximum.reduce(maps)
    high, low = int(np.floor(255.0 * threshold)), int(np.floor(255.0 * threshold * low_ratio))
    seeds = p > high
    if low < high:
        n, labels = cv2.connectedComponents((p > low).view(np.uint8), connectivity=8)
        seeded = np.zeros(n, bool)
        seeded[labels[seeds]] = True
        seeded[0] = False
        found = seeded[labels]
    else:
        found = seeds
    mask = found.astype(np.uint8) * 255
    if dilate > 0:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1,) * 2))
    return mask
