"""Colour-balance benchmark: how far the estimated colour of the light is from a known cast.

Clean photos (every 4th of bsds500/test, every 2nd of sun_hays80: 90 photos) get a random
cast (each channel scaled by exp(U(-0.25, 0.25)), fixed seed); each estimator's light colour
is compared with the cast as an angle between RGB vectors (degrees; 0 = exact). Four
conditions: the cast photo, with Gaussian noise (sigma --noise per channel), that noisy
photo after the app's luminance-only denoise (the order of the Restore panel's steps), and
the cast photo with the restore bench's synthetic damage (white and dark scratches and dust,
whose strong neutral edges could pass for the light's colour when repairs run before the fill).

Estimators: gray-world (channel means), gray-edge with the plain mean of the edge strengths
(the app before 2026-12-02), and the app's `cast_estimate` (edge strengths pooled with a
Minkowski norm of order EDGE_NORM).

Last measured (2026-12-02, noise 10): mean (90th percentile) angular error, degrees
  gray-world           clean 7.40 (14.25)  noisy 7.37 (14.26)  denoised 7.34 (14.26)  damaged 7.26 (14.17)
  gray-edge, mean      clean 3.34 ( 6.60)  noisy 3.64 ( 6.66)  denoised 5.17 ( 9.43)  damaged 3.17 ( 5.87)
  cast_estimate (p 4)  clean 3.04 ( 5.52)  noisy 3.12 ( 5.47)  denoised 3.15 ( 5.50)  damaged 3.48 ( 5.59)
The order-4 pooling gives up a little on damaged photos (their strong neutral edges weigh
more; fill the damage before balancing, as `restore` does) for the large gain after denoising.
(A first run with another random draw of casts: clean 2.94 against 3.20, denoised 3.03
against 5.11; the mean moves by about 0.1 degree between draws.)

    python bench/balance.py [--data ../shared/data/photos] [--noise 10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.restore import repair
from app.restore.synthetic import add_damage


def gray_world_estimate(rgb: np.ndarray) -> np.ndarray:
    return rgb.reshape(-1, 3).mean(axis=0)


def mean_edge_estimate(rgb: np.ndarray) -> np.ndarray:
    return repair.cast_estimate(rgb, norm=1.0)


ESTIMATORS = {"gray-world": gray_world_estimate, "gray-edge, mean": mean_edge_estimate,
              f"cast_estimate (p {repair.EDGE_NORM:g})": repair.cast_estimate}


def angle(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"))
    parser.add_argument("--noise", type=float, default=10.0, help="noise sigma in grey levels")
    parser.add_argument("--limit", type=int, default=90)
    args = parser.parse_args(argv)
    data = Path(args.data)
    files = sorted((data / "bsds500" / "test").glob("*.jpg"))[::4] + sorted((data / "sun_hays80").glob("*.jpg"))[::2]
    files = files[: args.limit]
    if not files:
        print(f"no photos under {data}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(5)
    conditions = ("clean", "noisy", "denoised", "damaged")
    errors = {(name, cond): [] for name in ESTIMATORS for cond in conditions}
    for path in files:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        cast = np.exp(rng.uniform(-0.25, 0.25, 3))
        cast_photo = np.clip(rgb * cast, 0, 255).astype(np.uint8)
        noisy = np.clip(cast_photo + rng.normal(0, args.noise, rgb.shape), 0, 255).astype(np.uint8)
        damaged = add_damage(cast_photo, np.random.default_rng(int(rng.integers(1 << 30)))).image
        images = {"clean": cast_photo, "noisy": noisy, "denoised": repair.denoise(noisy), "damaged": damaged}
        for name, estimate in ESTIMATORS.items():
            for cond in conditions:
                errors[name, cond].append(angle(estimate(images[cond]), cast))
    print(f"{len(files)} photos, noise sigma {args.noise:g}: mean (90th percentile) angular error, degrees")
    for name in ESTIMATORS:
        cells = [f"{cond} {np.mean(errors[name, cond]):5.2f} ({np.percentile(errors[name, cond], 90):5.2f})"
                 for cond in conditions]
        print(f"  {name:20s}  " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
