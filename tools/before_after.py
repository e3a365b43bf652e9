"""Make docs/img/before-after.png with the command line, from the bundled sample photo:
the photo with its mask shown in red, and the command line's result beside it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    photo, mask = ROOT / "resources" / "sample.png", ROOT / "resources" / "sample_mask.png"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.png"
        cmd = [sys.executable, "-m", "app", "inpaint", str(photo), "--mask", str(mask), "-o", str(out), *sys.argv[1:]]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        result = np.asarray(Image.open(out).convert("RGB"))
    before = np.asarray(Image.open(photo).convert("RGB")).copy()
    painted = np.asarray(Image.open(mask).convert("L")) > 127
    before[painted] = (0.45 * before[painted] + 0.55 * np.array([255, 40, 40])).astype(np.uint8)
    h, w = result.shape[:2]
    canvas = Image.new("RGB", (2 * w + 12, h + 28), "white")
    canvas.paste(Image.fromarray(before), (0, 28))
    canvas.paste(Image.fromarray(result), (w + 12, 28))
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 8), "before: mask in red", fill="black")
    draw.text((w + 18, 8), "after: " + done.stdout.strip().split(" with ", 1)[-1], fill="black")
    target = ROOT / "docs" / "img" / "before-after.png"
    canvas.save(target)
    print(target.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
