"""The learned damage detector (models/damage_detector.onnx through app/restore/learned.py):
it finds drawn damage on photo-like images, leaves clean ones alone, tiles without seams,
and a missing or broken model gives a clear error or the documented fallback."""

import itertools
import json
import shutil

import cv2
import numpy as np
import pytest

from app.engine.errors import ModelError
from app.restore import detect, learned, repair
from app.restore.pipeline import restore
from app.restore.synthetic import add_damage, score_proposal
from tests.restore.conftest import smooth_photo


@pytest.fixture(scope="module")
def model():
    return learned.load_detector(threads=1)


def photo_like(h=320, w=400, seed=0):
    """Gently varying colour, a strong edge, soft blobs and mild noise: a photo with no
    thin structures and no specks of its own."""
    img = smooth_photo(h, w, seed).astype(np.float32)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        blob = np.zeros((h, w), np.float32)
        cv2.circle(blob, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), int(rng.uniform(20, 60)), 1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), 12)
        img += blob[:, :, None] * rng.uniform(-40, 40, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def near(a, b, px=2):
    k = np.ones((2 * px + 1,) * 2, np.uint8)
    return (a > 0) & (cv2.dilate(b, k) > 0)


def test_finds_a_scratch_and_dust_specks_and_little_else(model):
    clean = photo_like()
    damaged = clean.copy()
    truth = np.zeros(clean.shape[:2], np.uint8)
    cv2.line(damaged, (30, 40), (360, 250), (235, 235, 235), 2, cv2.LINE_AA)
    cv2.line(truth, (30, 40), (360, 250), 255, 2)
    specks = [(60, 200, 25), (200, 60, 30), (330, 90, 20), (120, 290, 230), (250, 180, 35)]
    for x, y, v in specks:
        cv2.circle(damaged, (x, y), 2, (v, v, v), -1)
        cv2.circle(truth, (x, y), 2, 255, -1)
    mask = detect.detect_damage(damaged, detector="learned", model=model)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    scratch = np.zeros_like(truth)
    cv2.line(scratch, (30, 40), (360, 250), 255, 2)
    found = near(cv2.dilate(mask, np.ones((5, 5), np.uint8)), scratch, 0).sum() / (scratch > 0).sum()
    assert found > 0.8
    for x, y, _ in specks:
        assert mask[y - 2 : y + 3, x - 2 : x + 3].any(), (x, y)
    assert near(mask, truth).sum() / (mask > 0).sum() > 0.9  # nothing much else flagged
    # each kind on its own channel: dust alone leaves the scratch out, and the other way round
    dust_only = detect.detect_damage(damaged, ("dust",), detector="learned", model=model)
    assert near(dust_only, scratch, 0).sum() < 0.2 * (scratch > 0).sum()
    assert all(dust_only[y - 2 : y + 3, x - 2 : x + 3].any() for x, y, _ in specks)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_photo_is_left_alone(model, seed):
    for clean in (photo_like(seed=seed), smooth_photo(seed=seed)):
        assert (detect.detect_damage(clean, detector="learned", model=model) > 0).mean() < 0.005


def test_synthetic_damage_scores_well(model):
    dmg = add_damage(photo_like(seed=4), np.random.default_rng(7))
    score = score_proposal(detect.detect_damage(dmg.image, detector="learned", model=model), dmg)
    assert score.precision > 0.8 and score.recall > 0.8, score


def test_slider_only_thresholds_one_analysis(model):
    dmg = add_damage(photo_like(seed=5), np.random.default_rng(5))
    analysis = detect.analyse_damage(dmg.image, detector="learned", model=model)
    assert analysis.detector == "learned" and analysis.kinds == detect.KINDS
    previous = None
    for s in (0.0, 0.25, 0.5, 0.75, 1.0):
        mask = detect.propose_damage(analysis, sensitivity=s)
        assert np.array_equal(mask, detect.detect_damage(dmg.image, sensitivity=s, detector="learned", model=model))
        if previous is not None:
            assert not (previous & ~mask).any()  # more sensitive never proposes less
        previous = mask
    assert (detect.propose_damage(analysis, sensitivity=1.0) > 0).sum() > (
        detect.propose_damage(analysis, sensitivity=0.0) > 0).sum()
    assert detect.propose_damage(analysis, cancel=lambda: True) is None
    # one forward pass gives both kinds, so asking for dust analyses the scratches too (ready for the
    # checkbox); the hybrid detector's scratches are the hand-made filter's, not analysed for dust
    assert detect.analyse_damage(dmg.image, ("dust",), detector="learned", model=model).kinds == detect.KINDS
    with pytest.raises(ValueError, match="not analysed: scratches"):
        detect.propose_damage(detect.analyse_damage(dmg.image, ("dust",), detector="hybrid", model=model),
                              ("scratches",))


def test_probability_threshold_is_the_calibrated_one_at_the_default_and_monotone():
    assert learned.probability_threshold(0.7, 0.5) == pytest.approx(0.7)
    ts = [learned.probability_threshold(0.7, s) for s in np.linspace(0, 1, 11)]
    assert all(a > b for a, b in itertools.pairwise(ts))
    assert 0 < ts[-1] and ts[0] < 1


def test_tiles_agree_with_one_pass(model, monkeypatch):
    dmg = add_damage(photo_like(300, 420, seed=6), np.random.default_rng(6))
    monkeypatch.setattr(learned, "STRONG_CAST", 10.0)  # one look at the photo (its cast would ask for two)
    whole = learned.damage_probability(model, dmg.image)
    seen = []
    monkeypatch.setattr(learned, "TILE", 100)  # 3 x 5 tiles, the last ones partial
    tiled = learned.damage_probability(model, dmg.image, progress=seen.append)
    assert len(seen) == 15 and seen[-1] == 1.0
    for kind in detect.KINDS:
        diff = np.abs(whole[kind].astype(np.int16) - tiled[kind].astype(np.int16))
        assert np.percentile(diff, 99.9) <= 3 and diff.max() <= 40, kind


def test_cancel_stops_between_tiles(model, monkeypatch):
    monkeypatch.setattr(learned, "TILE", 64)
    polls = []

    def cancel_late():
        polls.append(1)
        return len(polls) > 2

    assert detect.analyse_damage(photo_like(), cancel=cancel_late, detector="learned", model=model) is None
    assert len(polls) == 3


def _copy_model(tmp_path, meta_change=None, onnx_bytes=None, drop=False):
    src = learned.DEFAULT_MODEL
    tmp_path.mkdir(parents=True, exist_ok=True)
    dst = tmp_path / src.name
    if onnx_bytes is None:
        shutil.copy(src, dst)
    else:
        dst.write_bytes(onnx_bytes)
    meta = json.loads(src.with_suffix(".json").read_text())
    if meta_change:
        meta.update(meta_change)
    if drop:  # a sidecar from before the calibrated growth
        meta.pop("proposal_grow_px", None)
    dst.with_suffix(".json").write_text(json.dumps(meta))
    return dst


def test_missing_or_broken_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="No damage detector model at nothing.onnx"):
        learned.load_detector(tmp_path / "nothing.onnx")
    with pytest.raises(ModelError, match="Cannot load the damage detector"):
        learned.load_detector(_copy_model(tmp_path, onnx_bytes=b"not an onnx file"))
    with pytest.raises(ModelError, match="does not describe a damage detector"):
        learned.load_detector(_copy_model(tmp_path, {"contract": "image-only"}))
    with pytest.raises(ModelError, match="does not match its sidecar"):
        learned.load_detector(_copy_model(tmp_path, {"outputs": {"logits": "probabilities"}}))
    bad = _copy_model(tmp_path)
    bad.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError, match="not readable JSON"):
        learned.load_detector(bad)
    bad.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="has no sidecar"):
        learned.load_detector(bad)


def test_per_kind_thresholds_of_the_sidecar_apply_to_their_kind(tmp_path, model):
    """A sidecar may calibrate each kind on its own ("thresholds_at_default"); a kind it
    leaves out keeps the common threshold, and a bad entry is a clear error."""
    strict_dust = learned.load_detector(_copy_model(tmp_path, {"thresholds_at_default": {"dust": 0.97}}), threads=1)
    assert strict_dust.threshold_for("dust") == 0.97
    assert strict_dust.threshold_for("scratches") == model.threshold_at_default
    dmg = add_damage(photo_like(seed=12), np.random.default_rng(12))
    analysis = detect.analyse_damage(dmg.image, detector="learned", model=strict_dust)
    assert analysis.thresholds == {"scratches": model.threshold_at_default, "dust": 0.97}
    maps = learned.damage_probability(model, dmg.image)
    for s in (0.3, 0.5):
        expected = np.maximum.reduce([
            learned.propose_from_probability([maps[k]], learned.probability_threshold(t, s), model.low_ratio,
                                              model.grow_px)
            for k, t in (("scratches", model.threshold_at_default), ("dust", 0.97))])
        assert np.array_equal(detect.propose_damage(analysis, sensitivity=s), expected)
    # stricter on dust than the common threshold: never more proposed than with the common one
    common_only = learned.load_detector(_copy_model(tmp_path / "common", {"thresholds_at_default": {}}), threads=1)
    common = detect.detect_damage(dmg.image, detector="learned", model=common_only)
    assert not (detect.propose_damage(analysis) & ~common).any()
    for bad in ({"dust": 1.5}, {"hairs": 0.5}, ["dust", 0.5]):
        with pytest.raises(ModelError, match="thresholds_at_default|lacks a field"):
            learned.load_detector(_copy_model(tmp_path, {"thresholds_at_default": bad}))


def test_the_sidecar_says_how_far_the_proposal_grows(tmp_path, model):
    """The growth around the found pixels is calibrated with the thresholds and read from the
    sidecar; sidecars from before that field were calibrated with 1 px."""
    dmg = add_damage(photo_like(seed=13), np.random.default_rng(13))
    found = {}
    for grow in (0, 2, None):
        changes = {"proposal_grow_px": grow} if grow is not None else {}
        loaded = learned.load_detector(_copy_model(tmp_path / str(grow), changes, drop=grow is None), threads=1)
        assert loaded.grow_px == (1 if grow is None else grow)
        found[grow] = detect.detect_damage(dmg.image, detector="learned", model=loaded) > 0
    assert found[0].any() and not (found[0] & ~found[None]).any() and not (found[None] & ~found[2]).any()
    assert found[0].sum() < found[None].sum() < found[2].sum()
    with pytest.raises(ModelError, match="proposal_grow_px -1"):
        learned.load_detector(_copy_model(tmp_path / "bad", {"proposal_grow_px": -1}))


def test_one_kind_alone_leaves_what_the_other_kind_is_surer_of():
    """Proposing dust alone leaves the stretch of a scratch that the dust map also finds, but not
    a speck lying on that scratch that both maps are sure of; with both kinds nothing is left out."""
    scratch_p = np.zeros((40, 60), np.uint8)
    dust_p = np.zeros_like(scratch_p)
    scratch_p[20, 5:55] = 255  # a scratch
    dust_p[20, 5:55] = 200  # which the dust map finds too, less surely
    scratch_p[18:23, 28:33] = dust_p[18:23, 28:33] = 255  # a speck on it: both sure
    dust_p[5:8, 10:13] = 250  # a speck of dust alone
    analysis = detect.DamageAnalysis(shape=(40, 60), detector="learned",
                                     probability={"scratches": scratch_p, "dust": dust_p},
                                     thresholds={"scratches": 0.5, "dust": 0.5}, grow_px=0)
    dust = detect.propose_damage(analysis, ("dust",)) > 0
    assert dust[5:8, 10:13].all() and dust[18:23, 28:33].all()
    assert not dust[20, 5:28].any() and not dust[20, 33:55].any()
    scratches = detect.propose_damage(analysis, ("scratches",)) > 0
    assert scratches[20, 5:55].all() and not scratches[5:8, 10:13].any()
    both = detect.propose_damage(analysis) > 0
    assert np.array_equal(both, (scratch_p > 127) | (dust_p > 127))


def test_without_a_model_auto_falls_back_to_the_hand_filters(tmp_path, monkeypatch):
    monkeypatch.setattr(learned, "DEFAULT_MODEL", tmp_path / "damage_detector.onnx")
    monkeypatch.setattr(learned, "_loaded", {})
    photo = add_damage(photo_like(seed=8), np.random.default_rng(8)).image
    analysis = detect.analyse_damage(photo)  # "auto", the default
    assert analysis.detector == "hand" and "No damage detector model" in analysis.note
    assert np.array_equal(detect.propose_damage(analysis), detect.detect_damage(photo, detector="hand"))
    with pytest.raises(ModelError, match="No damage detector model"):
        detect.analyse_damage(photo, detector="learned")
    result = restore(photo, detector="auto")  # the command line's path: the fallback is said, not silent
    assert any("hand-made damage filters used" in n for n in result.notes)
    assert np.array_equal(result.mask, detect.propose_damage(analysis))
    with pytest.raises(ValueError, match="unknown detector"):
        detect.analyse_damage(photo, detector="magic")


def test_hybrid_is_the_hand_scratch_filter_and_the_nets_dust_map(model, monkeypatch):
    monkeypatch.setattr(learned, "WIDE_MODEL", learned.WIDE_MODEL.with_name("missing.onnx"))  # the shipped file alone
    dmg = add_damage(photo_like(seed=9), np.random.default_rng(9))
    analysis = detect.analyse_damage(dmg.image, detector="hybrid", model=model)
    assert analysis.detector == "hybrid" and analysis.kinds == detect.KINDS
    assert set(analysis.probability) == {"dust"} and analysis.scratches is not None and analysis.dust is None
    maps = learned.damage_probability(model, dmg.image, ("dust",))
    for s in (0.3, 0.5, 0.8):
        hand = detect.detect_damage(dmg.image, ("scratches",), s, detector="hand")
        threshold = learned.probability_threshold(model.threshold_for("dust"), s)
        dust = learned.propose_from_probability([maps["dust"]], threshold, model.low_ratio, model.grow_px)
        assert np.array_equal(detect.propose_damage(analysis, sensitivity=s), np.maximum(hand, dust))
    # with the shipped model, "auto" (the default) is the learned net alone
    auto = detect.detect_damage(dmg.image)
    assert np.array_equal(auto, detect.detect_damage(dmg.image, detector="learned"))
    assert not np.array_equal(auto, detect.detect_damage(dmg.image, detector="hybrid"))


@pytest.mark.parametrize("detector", ["hand", "learned", "hybrid"])
def test_command_line_detector_choice(tmp_path, detector):
    from PIL import Image

    from app.cli.main import main

    dmg = add_damage(photo_like(seed=10), np.random.default_rng(10))
    Image.fromarray(dmg.image).save(tmp_path / "old.png")
    code = main(["restore", str(tmp_path / "old.png"), "-o", str(tmp_path / "out.png"), "--detector", detector,
                 "--save-mask", str(tmp_path / "mask.png")])
    assert code == 0
    saved = np.asarray(Image.open(tmp_path / "mask.png").convert("L"))
    assert np.array_equal(saved, detect.detect_damage(dmg.image, detector=detector))


def test_damage_under_a_colour_cast_is_found_in_the_balanced_look(model, monkeypatch):
    """A warm cast over the whole scan, damage included (a yellowed print): the white marks turn
    yellow and the nets, which learned neutral marks, miss them; the second look at the photo
    with the cast divided out finds them (and a photo without a cast gets one look only)."""
    monkeypatch.setattr(learned, "WIDE_MODEL", learned.WIDE_MODEL.with_name("missing.onnx"))  # one detector's looks
    dmg = add_damage(photo_like(seed=5), np.random.default_rng(8))
    gains = np.array([1.06, 0.98, 0.72], np.float32)
    cast = np.clip(dmg.image.astype(np.float32) * gains + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(np.log(repair.cast_estimate(cast))).max() > learned.STRONG_CAST
    both = score_proposal(detect.detect_damage(cast, detector="learned", model=model), dmg)
    seen = []
    learned.damage_probability(model, cast, progress=seen.append)  # two looks, one progress bar
    assert seen == sorted(seen) and seen[-1] == 1.0 and any(0.4 < f <= 0.5 for f in seen)
    looks = []
    real = learned._probability
    monkeypatch.setattr(learned, "_probability", lambda m, rgb, *a: looks.append(rgb) or real(m, rgb, *a))
    monkeypatch.setattr(learned, "STRONG_CAST", 10.0)  # one look, as before
    one = score_proposal(detect.detect_damage(cast, detector="learned", model=model), dmg)
    assert len(looks) == 1 and both.recall > one.recall + 0.2 and both.precision > 0.8, (both, one)


def test_a_big_scan_is_also_looked_at_by_the_nets_trained_on_wider_damage(tmp_path, monkeypatch):
    """Every photo is looked at by the shipped file and by its sibling trained with wider damage
    (models/damage_detector_wide.onnx); a pixel is proposed where either proposes it, at every
    sensitivity: from WIDE_FROM_SIDE on each at its own calibrated threshold, below it the wide
    file at a threshold SMALL_PHOTO_MARGIN logits higher. A model the user chose is used alone;
    without the wide file the shipped one does it all."""
    monkeypatch.setattr(learned, "WIDE_FROM_SIDE", 150)  # these test photos count as big scans
    small = add_damage(photo_like(seed=3)[:120, :140].copy(), np.random.default_rng(3)).image
    big = add_damage(photo_like(seed=4), np.random.default_rng(4)).image
    assert max(small.shape[:2]) < 150 <= max(big.shape[:2])
    shutil.copy(learned.DEFAULT_MODEL, tmp_path / "mine.onnx")
    shutil.copy(learned.DEFAULT_MODEL.with_suffix(".json"), tmp_path / "mine.json")
    mine, wide = learned.load_detector(tmp_path / "mine.onnx"), learned.load_detector(learned.WIDE_MODEL)
    strict = learned.stricter(wide, learned.SMALL_PHOTO_MARGIN)
    assert strict.threshold_for("scratches") > wide.threshold_for("scratches")
    for photo, wide_as in ((big, wide), (small, strict)):
        analysis = detect.analyse_damage(photo)
        assert analysis.model_path == f"{learned.DEFAULT_MODEL}+{learned.WIDE_MODEL}"
        for sensitivity in (0.25, 0.5, 0.75):
            either = (detect.detect_damage(photo, sensitivity=sensitivity, model=mine) > 0) | (
                detect.detect_damage(photo, sensitivity=sensitivity, model=wide_as) > 0)
            joined = detect.propose_damage(analysis, sensitivity=sensitivity) > 0
            assert either.any() and (joined != either).mean() < 0.002  # the same up to 8-bit rounding at the edge
    big_alone = detect.propose_damage(detect.analyse_damage(big, model=wide)) > 0
    strict_alone = detect.propose_damage(detect.analyse_damage(big, model=strict)) > 0
    assert strict_alone.sum() < big_alone.sum()  # the margin proposes less
    assert detect.analyse_damage(big, model=mine).model_path == str(mine.path)  # the user's own: alone
    monkeypatch.setattr(learned, "WIDE_MODEL", tmp_path / "missing.onnx")
    assert detect.analyse_damage(big).model_path == str(learned.DEFAULT_MODEL)
