"""Draw resources/sample_mask.png: the space-shuttle model behind the astronaut in
resources/sample.png, the object the demo removes."""

from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    mask = np.zeros((512, 512), np.uint8)
    # shuttle, boosters and tank; the stand below them
    outline = np.array([[383, 0], [448, 0], [462, 60], [468, 190], [476, 232], [470, 262], [452, 278],
                        [372, 282], [352, 232], [366, 176], [378, 40]], np.int32)
    cv2.fillPoly(mask, [outline], 255)
    mask = cv2.dilate(mask, np.ones((7, 7), np.uint8))
    cv2.imwrite(str(ROOT / "resources" / "sample_mask.png"), mask)


if __name__ == "__main__":
    main()
