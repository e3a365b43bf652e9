"""Before/after compare state. No Qt.

The divider sits at an image x coordinate. By default the original ("before") is on the
left and the result ("after") on the right; `flip()` swaps the sides (the `\\` key).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CompareState:
    divider_x: float = 0.0  # image coordinates
    flipped: bool = False
    enabled: bool = True

    def reset(self, image_width: int) -> None:
        self.divider_x = image_width / 2
        self.flipped = False
        self.enabled = True

    def move_to(self, x: float, image_width: int) -> None:
        self.divider_x = min(max(float(x), 0.0), float(image_width))

    def flip(self) -> None:
        self.flipped = not self.flipped

    def after_on_right(self) -> bool:
        return not self.flipped
