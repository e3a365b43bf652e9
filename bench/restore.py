"""Old-photo restoration benchmark on synthetic damage (issue 6).

Clean photos get realistic damage (app/restore/synthetic.py: thin curved scratches of
varying width and contrast, dust specks and hairs, creases, light grain) with a fixed
seed; the damage proposal at a given sensitivity is scored against the known damage.

Definitions (pixel-wise, tolerance band t = 2 px):
  precision = proposed pixels within t px of a pixel the damage touched / proposed pixels
  recall    = visibly damaged pixels (changed >= 12 grey levels) within t px of a proposed
              pixel / visibly damaged pixels
  flagged   = share of pixels proposed on the *undamaged* photo (every one a false alarm)
Both per-image means and pooled (all pixels of the set together) are printed, and the
recall of strong damage alone (changed >= 30 levels), to tell faint misses from bad ones.

PSNR against the clean photo: doing nothing (the damaged photo), the restore (fill of the
proposal through the engine), and the fill of the true damage mask (the upper bound), plus
the engine's fill against plain cv2.inpaint Telea of the same true mask (reference).

Images are read from a data folder given on the command line (default: ../shared/data/photos
relative to the repository); nothing is written. Tuning used the "dev" subset; report on the
others.

Held-out sets: bsds500/test (200), sun_hays80 from photo 3 (77), urban100 from photo 27
(23; photos 3-26 train and calibrate the learned detector). The damage includes up to one
tear per photo (synthetic.BENCH_DAMAGE).

Last measured (2026-12-02, session 19, sensitivity 0.5, means per photo; PSNR dB: nothing |
restore | true-mask fill, the upper bound; the fill is the editor's pipeline, the model then the
photo's grain by CRA, app.restore.pipeline.FILL_SETTINGS):
--detector auto = learned (the default; models/damage_detector.onnx, the mean of four
width-16 nets, thresholds and growth calibrated together, the proposal not grown; joined with
models/damage_detector_wide.onnx, which on these photos (under 3000 px) proposes only at a
threshold 1 logit above its own; a photo whose colour cast exceeds 10 % is looked at twice, as
it is and balanced):
  set        precision  recall  clean flagged   PSNR
  dev           0.914    0.855     0.188 %      26.95 | 33.11 | 36.06
  bsds-test     0.963    0.892     0.114 %      26.37 | 33.03 | 34.02
  sun           0.933    0.903     0.115 %      29.29 | 35.89 | 37.58
  urban         0.813    0.807     0.426 %      28.80 | 31.32 | 33.30
 (the shipped file alone, as before session 19: dev 0.919 / 0.841 / 0.163 %, bsds-test 0.966 /
  0.888 / 0.101 %, sun 0.941 / 0.902 / 0.095 %, urban 0.825 / 0.795 / 0.389 %; restore PSNR
  32.94, 32.95, 36.02, 31.43. Joined at the wide file's own threshold, --no-fill: dev 0.896 /
  0.867 / 0.259 %, urban 0.790 / 0.815 / 0.504 %)
 (PSNR with the engine's edge band of session 17: thin damage in boxes the model sees at half
  resolution or less is filled from the photo by Telea at full resolution, the grain on top;
  before it: restore 32.90, 32.95, 35.84, 31.33, upper bound 35.97, 34.02, 37.29, 33.04)
 (with the plain OpenCV Telea fill used before: restore 33.00, 33.05, 36.36, 31.76; upper bound
  36.45, 34.15, 38.26, 34.09: PSNR favours its smooth fill, which left scratches as bands across
  grain and grass: fill of the true damage on dev, high-frequency energy 0.34 of the photo's
  against 0.98 with the model)
 with --cast (a warm cast over each damaged photo): dev 0.889 / 0.726 / 0.181 %, urban 0.715 /
 0.613 / 0.593 % (one look, as before: dev 0.778 / 0.227 / 0.101 %, urban 0.640 / 0.257 / 0.289 %)
 (the same nets with one look, 2026-12-01: dev 0.922 / 0.841 / 0.154 %, bsds-test 0.967 /
  0.887 / 0.083 %, sun 0.941 / 0.902 / 0.089 %, urban 0.827 / 0.792 / 0.384 %; restore PSNR
  33.10, 33.08, 36.36, 31.77)
 (the four-net mean shipped before it, its proposal grown by 1 px: dev 0.929 / 0.820 / 0.164 %,
  bsds-test 0.970 / 0.867 / 0.090 %, sun 0.957 / 0.884 / 0.074 %, urban 0.831 / 0.763 /
  0.435 %; restore PSNR 32.57, 32.60, 36.16, 31.44; the three-net mean before that: dev 0.932 /
  0.817 / 0.148 %, bsds-test 0.968 / 0.868 / 0.093 %, sun 0.955 / 0.884 / 0.078 %, urban 0.827 /
  0.756 / 0.455 %; the three-net mean before that: bsds-test 0.968 / 0.861 / 0.079 %, sun 0.959
  / 0.875 / 0.063 %, urban 0.772 / 0.707 / 0.797 %; the single net before that: bsds-test 0.956
  / 0.816 / 0.103 %, sun 0.943 / 0.842 / 0.085 %, urban 0.687 / 0.631 / 0.907 %)
--detector hand (the hand-made filters, tuned on dev):
  dev (tuned)   0.897    0.637     0.113 %      26.95 | 31.21 | 36.45
  bsds-test     0.819    0.539     0.366 %      26.37 | 29.57 | 34.15
  sun           0.820    0.714     0.289 %      29.29 | 33.76 | 38.26
  urban         0.681    0.438     0.451 %      28.80 | 29.69 | 34.09
--detector hybrid (hand-made scratch filter + the dust map of the four-net model before this
one, grown by 1 px), --no-fill:
  dev           0.917    0.682     0.078 %
  bsds-test     0.860    0.600     0.321 %
  sun           0.861    0.784     0.242 %
  urban         0.723    0.498     0.443 %
Issue 6's targets (precision and recall >= 0.8, <= 0.5 % flagged) are met by the learned
detector on every set, on urban narrowly (0.813 / 0.807 / 0.426 %; the shipped file alone fell
just short on recall there, 0.795): dust specks on busy facades and dark paving and thick dark
scratches running along a facade's mullions are missed, and one clean photo still has 2.1 %
flagged (wavy paving joints). The shipped file alone at sensitivity 0.25 on urban was 0.911 /
0.696 / 0.151 %, at 0.75 0.689 / 0.866 / 0.935 %. Other runs: models/damage_detector.md.

--wide 2 (scratches and specks drawn 2x wider, as on a scan at twice the photos' resolution; not
in the figures above), --no-fill: dev 0.933 / 0.698 / 0.163 %, urban 0.849 / 0.634 / 0.389 %; with
--model models/damage_detector_wide.onnx (what the app uses on photos of 3000 px and more): dev
0.932 / 0.770 / 0.212 %, urban 0.871 / 0.718 / 0.378 % (at 1x: dev 0.907 / 0.822 / 0.212 %, urban
0.830 / 0.752 / 0.378 %).

--straight 0.5 (half the scratches straight and even; not in the figures above), urban,
--no-fill: 0.791 / 0.754 / 0.384 % (the three models shipped before: 0.790 / 0.726 / 0.435 %,
0.782 / 0.726 / 0.455 %, 0.723 / 0.672 / 0.797 %).

Last measured --slider (12 MP, 1 onnxruntime thread), 2026-12-02 (session 18), the machine idle: a
photo of 3000 px and more is now looked at by both detector files (models/damage_detector.md, "Wide
damage"):
  auto=learned  whole detection 62.39 s | analysis once 63.62 s | move on the cached analysis 0.01 s
Before it, 2026-12-01, both cores also running a
training each (at lower priority): the shipped four-net mean (four width-16 nets)
  auto=learned  whole detection 21.20 s | analysis once 21.87 s | move on the cached analysis 0.01 s
the four-net mean before it (same size; the other core idle): 20.91 s | 21.46 s | 0.01 s; the three-net mean shipped before it (other core busy with training): 15.82 s | 16.12 s |
0.01 s; the mean before that (two width-8 nets, one width-16): 10.78 s | 10.91 s | 0.01 s, and the
single net before that: 3.14 s | 3.35 s | 0.01 s.
Earlier (2 cores shared with other work, load ~4.5; the hand-made figures were 7.7 / 6.8 / 1.5 s on a
quieter machine):
  hand      whole detection 14.60 s | analysis once 13.24 s | move on the cached analysis 3.84 s
  hybrid    whole detection 26.53 s | analysis once 14.89 s | move on the cached analysis 3.26 s
proposals identical between the cached and uncached paths in every case.

  python bench/restore.py [--data DIR] [--set dev|bsds-test|sun|urban|all] [--limit N]
                          [--sensitivity S] [--sweep] [--no-fill] [--slider]
                          [--detector hand|hybrid|learned|auto] [--threads N] [--model ONNX] [--cast]
                          [--wide FACTOR]

--slider times what a sensitivity slider move costs on a 12 MP photo (the first dev photo
enlarged to 4000x3000 with synthetic damage): the whole detection (what a move cost before
the analysis was cached) against the cached path (analysis once, then only the thresholds),
and checks the two proposals are identical.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.engine.errors import ModelError
from app.io.images import read_image
from app.restore.detect import DEFAULT_DETECTOR, DETECTORS, analyse_damage, detect_damage, propose_damage
from app.restore.learned import load_detector
from app.restore.pipeline import FILL_SETTINGS, fill_damage
from app.restore.synthetic import BENCH_DAMAGE, DamageSpec, add_damage, score_proposal, widened

SEED = 20240606
STRONG_LEVELS = 30  # also reported: recall of damage that changed a pixel by at least this much
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"


def subsets(data: Path) -> dict[str, list[Path]]:
    bsds_train = sorted((data / "bsds500" / "train").glob("*.jpg"))
    bsds_test = sorted((data / "bsds500" / "test").glob("*.jpg"))
    sun = sorted((data / "sun_hays80").glob("*.jpg"))
    urban = sorted((data / "urban100").glob("*.png"))
    return {
        # what the thresholds were tuned on
        "dev": bsds_train[:14] + urban[:3] + sun[:3],
        # held out from tuning (urban100 photos 3-26 train and calibrate the learned
        # detector: tools/train_detector.py URBAN_TRAIN, URBAN_VALIDATION)
        "bsds-test": bsds_test,
        "sun": sun[3:],
        "urban": urban[27:],
    }


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def warm_cast(rng: np.random.Generator):
    """A colour cast over the whole scan, damage included (a yellowed print, a scanner's white
    balance): red up to +10 %, blue down by 15-30 %."""
    gains = np.array([rng.uniform(1.0, 1.1), rng.uniform(0.95, 1.02), rng.uniform(0.7, 0.85)], np.float32)
    return lambda rgb: np.clip(rgb.astype(np.float32) * gains + 0.5, 0, 255).astype(np.uint8)


def run_set(name: str, files: list[Path], sensitivities: list[float], fill: bool, how: dict,
            damage: DamageSpec = BENCH_DAMAGE, cast: bool = False) -> None:
    rows = {s: [] for s in sensitivities}
    ps = []
    t0 = time.perf_counter()
    t_detect = 0.0
    for i, path in enumerate(files):
        clean = read_image(path).rgb
        rng = np.random.default_rng([SEED, i, sum(path.name.encode())])
        dmg = add_damage(clean, rng, damage)
        if cast:  # the same cast on the clean photo: it is what a restore should come back to
            tone = warm_cast(np.random.default_rng([SEED, i, 7]))
            clean, dmg.image = tone(clean), tone(dmg.image)
        for s in sensitivities:
            t = time.perf_counter()
            prop = detect_damage(dmg.image, sensitivity=s, **how)
            t_detect += time.perf_counter() - t
            sc = score_proposal(prop, dmg)
            flag = (detect_damage(clean, sensitivity=s, **how) > 0).mean()
            prop_b = prop > 0
            near_truth = cv2.dilate(dmg.support, np.ones((5, 5), np.uint8)) > 0
            near_prop = cv2.dilate(prop, np.ones((5, 5), np.uint8)) > 0
            vis = dmg.visible > 0
            change = np.abs(dmg.image.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
            strong = vis & (change >= STRONG_LEVELS)
            rows[s].append((sc.precision, sc.recall, flag, (prop_b & near_truth).sum(), prop_b.sum(),
                            (vis & near_prop).sum(), vis.sum(), (strong & near_prop).sum(), strong.sum()))
            if fill and s == sensitivities[0]:
                true_mask = cv2.dilate(dmg.support, np.ones((3, 3), np.uint8))
                restored, _, _ = fill_damage(dmg.image, prop, FILL_SETTINGS)
                upper, _, _ = fill_damage(dmg.image, true_mask, FILL_SETTINGS)
                ref = cv2.inpaint(dmg.image, true_mask, 3, cv2.INPAINT_TELEA)
                ps.append((psnr(dmg.image, clean), psnr(restored, clean), psnr(upper, clean), psnr(ref, clean)))
    n = len(files)
    print(f"\n[{name}] {n} photos, {time.perf_counter() - t0:.0f} s "
          f"(detection {t_detect / max(n * len(sensitivities), 1):.2f} s/photo)")
    print(f"  sens  precision(mean/pooled)  recall(mean/pooled)  clean-flagged(mean/max %)  "
          f"recall of strong damage (>= {STRONG_LEVELS} levels, pooled)")
    for s, r in rows.items():
        a = np.array(r, dtype=np.float64)
        pooled_p = a[:, 3].sum() / max(a[:, 4].sum(), 1)
        pooled_r = a[:, 5].sum() / max(a[:, 6].sum(), 1)
        print(f"  {s:4.2f}  {a[:, 0].mean():.3f} / {pooled_p:.3f}          {a[:, 1].mean():.3f} / {pooled_r:.3f}"
              f"        {100 * a[:, 2].mean():.3f} / {100 * a[:, 2].max():.3f}"
              f"              {a[:, 7].sum() / max(a[:, 8].sum(), 1):.3f}")
    if ps:
        p = np.array(ps)
        print(f"  PSNR dB vs clean (mean): nothing {p[:, 0].mean():.2f} | restore (proposal) {p[:, 1].mean():.2f} | "
              f"true-mask fill (upper bound) {p[:, 2].mean():.2f} | [reference: cv2 telea, true mask "
              f"{p[:, 3].mean():.2f}]")


def slider_bench(files: list[Path], how: dict, moves: tuple[float, ...] = (0.4, 0.6, 0.8)) -> None:
    """Slider move on a 12 MP photo: whole detection vs thresholds on a cached analysis."""
    clean = cv2.resize(read_image(files[0]).rgb, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    img = add_damage(clean, np.random.default_rng(SEED)).image
    t = time.perf_counter()
    analysis = analyse_damage(img, **how)
    t_analysis = time.perf_counter() - t
    full, cached = [], []
    for s in moves:
        t = time.perf_counter()
        before = detect_damage(img, sensitivity=s, **how)
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        after = propose_damage(analysis, sensitivity=s)
        cached.append(time.perf_counter() - t)
        if not np.array_equal(before, after):
            raise SystemExit(f"cached proposal differs from detect_damage at sensitivity {s}")
    f, c = float(np.median(full)), float(np.median(cached))
    print(f"\n[slider] {img.shape[1]}x{img.shape[0]} ({img.shape[0] * img.shape[1] / 1e6:.0f} MP), "
          f"sensitivities {', '.join(f'{s:.1f}' for s in moves)} (medians; proposals identical)")
    print(f"  whole detection per move (uncached) {f:.2f} s | analysis once {t_analysis:.2f} s | "
          f"move on the cached analysis {c:.2f} s | ratio {f / c:.1f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--set", default="all", choices=["dev", "bsds-test", "sun", "urban", "all", "held-out"])
    ap.add_argument("--limit", type=int, default=0, help="at most N photos per set (0 = all)")
    ap.add_argument("--sensitivity", type=float, default=0.5)
    ap.add_argument("--sweep", action="store_true", help="also sensitivities 0.25 and 0.75")
    ap.add_argument("--no-fill", action="store_true", help="skip the PSNR part (detection only)")
    ap.add_argument("--straight", type=float, default=0.0, metavar="SHARE",
                    help="draw this share of the scratches straight and even (film-transport lines); "
                         "0 = the damage of every figure recorded in this file's docstring")
    ap.add_argument("--wide", type=float, default=1.0, metavar="FACTOR",
                    help="scratches and specks FACTOR times wider (synthetic.widened: damage as on a scan "
                         "at FACTOR times the photos' resolution); 1 = the damage of the recorded figures")
    ap.add_argument("--cast", action="store_true",
                    help="a warm colour cast over each damaged photo, damage included (see warm_cast)")
    ap.add_argument("--slider", action="store_true", help="only time a slider move on a 12 MP photo")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS,
                    help="hybrid = hand-made scratch filter + the net's dust map; auto = learned when the "
                    "net's model loads, else the hand-made filters (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads of the learned detector (0 = its default)")
    ap.add_argument("--model", type=Path, default=None,
                    help="another detector ONNX file (with its .json sidecar) instead of models/damage_detector.onnx")
    args = ap.parse_args()
    if args.wide <= 0:
        ap.error("--wide must be above 0")
    how = {"detector": args.detector}
    if args.detector != "hand":
        try:
            how["model"] = load_detector(args.model, threads=args.threads)
        except ModelError as exc:  # auto: the hand-made filters, as the app does
            if args.detector != "auto":
                print(f"error: {exc}", file=sys.stderr)
                return 1
    print(f"detector: {args.detector if 'model' in how else 'hand'}"
          + (f" ({how['model'].path.name}, {args.threads or 'default'} onnxruntime threads)" if "model" in how else ""))
    if not args.data.is_dir():
        print(f"error: no photo folder at {args.data}; pass --data", file=sys.stderr)
        return 1
    sets = subsets(args.data)
    if args.slider:
        slider_bench(sets["dev"], how)
        return 0
    names = {"all": list(sets), "held-out": ["bsds-test", "sun", "urban"]}.get(args.set, [args.set])
    sens = [args.sensitivity] + ([0.25, 0.75] if args.sweep else [])
    damage = widened(replace(BENCH_DAMAGE, straight_share=args.straight), args.wide)
    print(f"seed {SEED}; tolerance 2 px; visible damage = changed >= 12 grey levels; fill {FILL_SETTINGS.method}"
          f" (coarse {FILL_SETTINGS.coarse_size}, cra {FILL_SETTINGS.cra})"
          + (f"; {args.straight:.0%} of the scratches straight" if args.straight else "")
          + (f"; scratches and specks {args.wide:g}x wider" if args.wide != 1 else "")
          + ("; a warm cast over each damaged photo" if args.cast else ""))
    for name in names:
        files = sets[name][: args.limit] if args.limit else sets[name]
        run_set(name, files, sens, not args.no_fill, how, damage, args.cast)
    return 0


if __name__ == "__main__":
    sys.exit(main())
