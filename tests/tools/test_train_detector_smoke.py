"""Smoke test of the damage detector's training and export (tools/train_detector.py):
a few steps on tiny generated photos, resume, export, and the app loading the export."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.restore.conftest import off_line

torch = pytest.importorskip("torch", reason="torch is a training extra (pip install .[train])")
cv2 = pytest.importorskip("cv2")

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture(scope="module")
def trainer():
    spec = importlib.util.spec_from_file_location("train_detector", TOOLS / "train_detector.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["train_detector"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def data(tmp_path):
    """A tiny data root laid out like shared/data: gently varying colour photos."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    for split, n in (("train", 3), ("val", 2)):
        folder = tmp_path / "data" / "photos" / "bsds500" / split
        folder.mkdir(parents=True)
        for i in range(n):
            a, b, c = rng.uniform(0.3, 1.0, 3)
            im = np.stack([60 + xx * a, 80 + yy * b, 100 + (xx + yy) * c / 3], -1)
            cv2.imwrite(str(folder / f"p{i}.jpg"), np.clip(im, 0, 255).astype(np.uint8))
    return tmp_path / "data"


def common(run, data):
    return ["--run", str(run), "--data", str(data), "--width", "4", "--context-width", "8", "--crop", "48",
            "--batch", "4", "--pool", "4", "--refresh", "2", "--threads", "1", "--lr", "3e-3",
            "--log-every", "5", "--eval-every", "0", "--ckpt-every", "1000"]


def test_loss_decreases_and_a_resumed_run_matches_an_uninterrupted_one(trainer, data, tmp_path):
    res = trainer.train(trainer.parse_args(common(tmp_path / "a", data) + ["--steps", "30"]))
    assert res["step"] == 30
    assert np.mean(res["history"][-5:]) < np.mean(res["history"][:3])
    log = (tmp_path / "a" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,loss") and len(log) == 1 + 30 // 5

    # 4 steps at once, and 2 + 2 with a resume in between: the same weights
    trainer.train(trainer.parse_args(common(tmp_path / "b", data) + ["--steps", "4"]))
    trainer.train(trainer.parse_args(common(tmp_path / "c", data) + ["--steps", "4", "--until", "2"]))
    res = trainer.train(trainer.parse_args(common(tmp_path / "c", data) + ["--steps", "4"]))
    assert res["step"] == 4 and len(res["history"]) == 2
    b, _ = trainer.load_model(tmp_path / "b" / "latest.pt")
    c, _ = trainer.load_model(tmp_path / "c" / "latest.pt")
    for (name, pb), (_, pc) in zip(b.state_dict().items(), c.state_dict().items()):
        assert torch.allclose(pb, pc, atol=1e-6), name


def test_export_is_loaded_and_run_by_the_app(trainer, data, tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from app.restore import detect, learned

    run = tmp_path / "run"
    trainer.train(trainer.parse_args(common(run, data) + ["--steps", "3"]))
    out = tmp_path / "models" / "damage_detector.onnx"
    trainer.main(common(run, data) + ["--export", str(out)])
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["contract"] == "damage-probability" and meta["channels"] == list(detect.KINDS)
    assert 0 < meta["threshold_at_default"] < 1
    assert set(meta["thresholds_at_default"]) == set(detect.KINDS)  # calibrated per kind
    m = onnx.load(str(out))
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) <= 17

    model = learned.load_detector(out, threads=1)
    assert all(model.threshold_for(k) == meta["thresholds_at_default"][k] for k in detect.KINDS)
    photo = np.full((70, 90, 3), 128, np.uint8)  # sides not multiples of the stride
    maps = learned.damage_probability(model, photo)
    assert set(maps) == set(detect.KINDS) and all(p.shape == (70, 90) and p.dtype == np.uint8 for p in maps.values())
    # the app's map is the training code's prediction (same net, same padding at the core)
    net, _ = trainer.load_model(run / "latest.pt")
    expected = trainer.predict(net.eval(), np.full((72, 92, 3), 128, np.uint8))[:, :70, :70]
    got = np.stack([maps[k][:, :70] for k in detect.KINDS]).astype(np.float32) / 255
    assert np.abs(got - expected).max() < 0.02


def test_pool_rescales_only_big_photos_and_only_when_asked(trainer, tmp_path):
    """--scale-min draws photos larger than trainer.LARGE at a random smaller scale (labels
    drawn at that scale too); smaller photos, and every photo by default, keep their size."""
    rng = np.random.default_rng(1)
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    cv2.imwrite(str(big), rng.integers(60, 200, (trainer.LARGE + 100, trainer.LARGE + 200, 3), dtype=np.uint8))
    cv2.imwrite(str(small), rng.integers(60, 200, (200, 300, 3), dtype=np.uint8))
    for photos, scale_min in (([big], 1.0), ([small], 0.5)):
        for img, target, weight in trainer.Pool(photos, 3, 1, seed=2, scale_min=scale_min).at(0):
            assert img.shape[:2] == cv2.imread(str(photos[0])).shape[:2] == target.shape[1:] == weight.shape[1:]
    sizes = set()
    for img, target, weight in trainer.Pool([big], 6, 1, seed=2, scale_min=0.5).at(0):
        h, w = img.shape[:2]
        assert target.shape[1:] == weight.shape[1:] == (h, w)
        assert (trainer.LARGE + 100) // 2 - 1 <= h <= trainer.LARGE + 100
        sizes.add((h, w))
    assert len(sizes) > 1 and (trainer.LARGE + 100, trainer.LARGE + 200) not in sizes


def test_ensemble_export_is_the_mean_of_its_members_logits(trainer, data, tmp_path):
    pytest.importorskip("onnxruntime")
    from app.restore import detect, learned

    runs = [tmp_path / "a", tmp_path / "b"]
    for run, seed in zip(runs, ("1", "2")):
        trainer.train(trainer.parse_args(common(run, data) + ["--steps", "3", "--seed", seed]))
    out = tmp_path / "models" / "ensemble.onnx"
    trainer.main(common(runs[0], data) + ["--export", str(out), "--ensemble", str(runs[1])])
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["steps_trained"] == [3, 3] and meta["architecture"].startswith("mean of the logits of 2")

    photo = np.random.default_rng(3).integers(0, 256, (40, 44, 3), dtype=np.uint8)
    maps = learned.damage_probability(learned.load_detector(out, threads=1), photo)
    nets = [trainer.load_model(run / "latest.pt")[0].eval() for run in runs]
    with torch.no_grad():
        x = torch.from_numpy(photo.transpose(2, 0, 1).astype(np.float32)[None] / 255.0)
        logits = [net(x)[0] for net in nets]
    expected = torch.sigmoid((logits[0] + logits[1]) / 2).numpy()
    got = np.stack([maps[k] for k in detect.KINDS]).astype(np.float32) / 255
    # the app reads the photo with a reflected margin, so compare away from the border
    core = (slice(None), slice(12, 28), slice(12, 32))
    assert np.abs(got[core] - expected[core]).max() < 0.02
    # and it is not simply one member's map
    assert max(np.abs(torch.sigmoid(lg).numpy()[core] - expected[core]).max() for lg in logits) > 0.001


def test_shipped_members_come_back_from_the_onnx_file_a_contrast_member_too(trainer, data, tmp_path):
    """--members-from rebuilds each member of an exported ensemble as a run (their run folders
    are machine-local), so a new net can be searched and exported with them; a member with
    the local-contrast channel (--contrast) exports, runs in the app and comes back too."""
    pytest.importorskip("onnxruntime")
    runs = [tmp_path / "plain", tmp_path / "contrast"]
    trainer.train(trainer.parse_args(common(runs[0], data) + ["--steps", "2", "--seed", "1"]))
    trainer.train(trainer.parse_args(common(runs[1], data) + ["--steps", "2", "--seed", "2", "--contrast"]))
    out = tmp_path / "models" / "ensemble.onnx"
    trainer.main(common(runs[0], data) + ["--export", str(out), "--ensemble", str(runs[1])])
    trainer.main(["--run", str(tmp_path / "back"), "--members-from", str(out)])
    photo = np.random.default_rng(4).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    for index, run in enumerate(runs):
        original, _ = trainer.load_model(run / "latest.pt")
        rebuilt, ck = trainer.load_model(tmp_path / "back" / f"member{index}" / "latest.pt")
        assert rebuilt.contrast == (index == 1) and ck["step"] == 2
        assert np.array_equal(trainer.predict_logits(original.eval(), photo),
                              trainer.predict_logits(rebuilt.eval(), photo))
    # the contrast channel: a speck on dark textured paving as strong as one on a light textured
    # wall with four times the contrast (where the texture is above the channel's floor)
    texture = torch.from_numpy(np.random.default_rng(5).uniform(-0.1, 0.1, (1, 1, 31, 31)).astype(np.float32))
    dark = 0.15 + texture.expand(1, 3, 31, 31).clone()
    dark[..., 15, 15] -= 0.1
    light = dark * 4
    dark_speck, light_speck = (trainer.local_contrast(g)[0, 0, 15, 15].item() for g in (dark, light))
    assert dark_speck == pytest.approx(light_speck, rel=0.1) and dark_speck < -0.3


def test_painted_grids_are_negatives_inside_one_rectangle(trainer, tmp_path):
    """--grid-share paints regular grids of thin lines (facade mullions, railings) that are
    labelled "no damage"; they cover one rectangle of the photo, with several lines across it."""
    flat = np.full((300, 400, 3), 128, np.uint8)
    for seed in range(5):
        out = trainer.paint_grid(flat, np.random.default_rng(seed))
        assert out.shape == flat.shape and out.dtype == np.uint8
        changed = np.abs(out.astype(np.int16) - 128).max(axis=2) >= 12
        ys, xs = np.nonzero(changed)
        assert len(ys) > 0.01 * changed.size
        box = changed[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert box.mean() < 0.7  # lines, not a filled rectangle
        # several lines: a row or column through the middle of the box crosses at least 3
        mid_row, mid_col = box[box.shape[0] // 2].astype(np.int8), box[:, box.shape[1] // 2].astype(np.int8)
        assert max((np.diff(mid_row) == 1).sum(), (np.diff(mid_col) == 1).sum()) >= 3

    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), flat)
    for img, target, weight in trainer.Pool([photo], 4, 1, seed=3, clean_share=1.0, grid_share=1.0).at(0):
        assert (np.abs(img.astype(np.int16) - 128) >= 12).any()  # the grid is in the photo
        assert not target.any() and weight.all()  # and it is not damage


def test_tear_share_sets_how_many_damaged_photos_have_a_tear(trainer):
    """--tear-share: that share of the damage specs has one tear (the bench's damage has one in
    half of its photos); without it a quarter, drawn as the runs before the option."""
    def share(tear_share):
        rng = np.random.default_rng(5)
        specs = [trainer.random_spec(rng, tear_share) for _ in range(2000)]
        assert all(s.tears in ((0, 0), (0, 1), (1, 1)) for s in specs)
        return np.mean([s.tears == (1, 1) for s in specs]), np.mean([s.tears[1] for s in specs])

    assert share(1.0) == (1.0, 1.0)
    assert share(0.0) == (0.0, 0.0)
    sure, possible = share(0.5)
    assert abs(sure - 0.5) < 0.04 and possible == sure
    sure, possible = share(None)  # (0, 1): a tear in half of these specs' photos
    assert sure == 0.0 and abs(possible / 2 - 0.25) < 0.03


def test_cast_share_tints_that_share_of_the_pool_and_leaves_the_labels(trainer, tmp_path):
    """--cast-share: that share of the pool's photos comes under a colour cast (every channel
    scaled by its own gain, damage included); the labels, and the photos of a run without the
    option, are what they were."""
    rng = np.random.default_rng(3)
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), rng.integers(40, 200, (160, 200, 3), dtype=np.uint8))
    plain = trainer.Pool([photo], 40, 1, seed=4).at(0)
    again = trainer.Pool([photo], 40, 1, seed=4, cast_share=0.0).at(0)
    cast = trainer.Pool([photo], 40, 1, seed=4, cast_share=0.5).at(0)
    tinted = 0
    for (img, t, w), (img0, t0, w0), (imgc, tc, wc) in zip(plain, again, cast, strict=True):
        assert np.array_equal(img, img0) and np.array_equal(t, t0)
        assert np.array_equal(tc, t) and np.array_equal(wc, w)
        if not np.array_equal(imgc, img):
            tinted += 1
            ok = (img > 20) & (img < 200)  # away from clipping the gain is one per channel
            gains = [np.median(imgc[..., c][ok[..., c]] / img[..., c][ok[..., c]]) for c in range(3)]
            assert max(gains) / min(gains) > 1.03
    assert 10 <= tinted <= 30


def straightness(lines: np.ndarray) -> float | None:
    """Median over the painted lines (connected components) of the RMS distance of their
    pixels from their own best-fitting straight line, in px; None for a grid (its crossings
    join the lines into one component)."""
    n, label = cv2.connectedComponents(lines.astype(np.uint8))
    components = [label == i for i in range(1, n)]
    residuals = [np.sqrt(np.mean(off_line(c) ** 2)) for c in components if c.sum() >= 200]
    return float(np.median(residuals)) if len(residuals) >= 3 else None


def test_wavy_grids_bend_their_lines(trainer, tmp_path):
    """--wave-share bends the painted lines (curved paving) and they stay negatives."""
    flat = np.full((300, 400, 3), 128, np.uint8)
    bent, straight = [], []
    for seed in range(20):
        for wavy, found in ((True, bent), (False, straight)):
            out = trainer.paint_grid(flat, np.random.default_rng(seed), wavy=wavy)
            rms = straightness(np.abs(out.astype(np.int16) - 128).max(axis=2) >= 12)
            if rms is not None:  # rows of lines; grids are left out
                found.append(rms)
    assert len(straight) >= 3 and len(bent) >= 3
    assert np.median(bent) > 2 * np.median(straight), (straight, bent)

    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), flat)
    for img, target, weight in trainer.Pool([photo], 4, 1, seed=3, clean_share=1.0, grid_share=1.0,
                                            wave_share=1.0).at(0):
        assert (np.abs(img.astype(np.int16) - 128) >= 12).any()  # the grid is in the photo
        assert not target.any() and weight.all()  # and it is not damage


def test_member_search_ranks_every_ensemble_as_its_export_would_score(trainer, data, tmp_path):
    """--search-members scores each combination from its members' cached logits; the score
    of a combination is what calibration's rule gives the exported ensemble itself."""
    runs = [tmp_path / name for name in ("a", "b", "c")]
    for run, seed in zip(runs, ("1", "2", "3")):
        trainer.train(trainer.parse_args(common(run, data) + ["--steps", "3", "--seed", seed]))
    argv = ["--data", str(data), "--search-members", *map(str, runs), "--sizes", "2", "3", "--top", "2"]
    results = trainer.search_members(trainer.parse_args(argv))
    assert len(results) == 4  # three pairs and the trio
    assert [r[0] for r in results] == sorted((r[0] for r in results), reverse=True)
    assert {frozenset(r[1]) for r in results} == {frozenset(c) for c in
                                                  [runs[:2], runs[1:], runs[::2], runs]}

    value, combo, rule, _ = results[-1]
    ensemble = trainer.DamageEnsemble([trainer.load_model(run / "latest.pt")[0] for run in combo]).eval()
    _, val_photos = trainer.photo_split(data)
    vset = trainer.validation_set(val_photos, 6)
    pairs = [tuple(trainer.app_probability(trainer.predict_logits(ensemble, im)) for im in (dmg.image, clean))
             for clean, dmg in vset]
    p, r, _ = trainer.rule_scores(pairs, vset, [rule])[0]
    assert abs(min(p, r) - value) < 0.02  # the cache holds float16 logits

    # the cache is reused, and a run trained further is computed anew
    caches = [run / "calibration_logits.npz" for run in runs]
    stamps = [c.stat().st_mtime_ns for c in caches]
    again = trainer.search_members(trainer.parse_args(argv))
    assert [(r[0], r[1]) for r in again] == [(r[0], r[1]) for r in results]
    assert [c.stat().st_mtime_ns for c in caches] == stamps
    trainer.train(trainer.parse_args(common(runs[0], data) + ["--steps", "4", "--seed", "1"]))
    trainer.search_members(trainer.parse_args(argv))
    assert caches[0].stat().st_mtime_ns != stamps[0] and caches[1].stat().st_mtime_ns == stamps[1]
