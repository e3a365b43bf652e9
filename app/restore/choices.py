"""The Restore panel's choices as plain data: what to detect, with which detector and at which
sensitivity, and the repair steps' strengths. A project keeps them, so a scan reopened later
comes back with the settings it was worked with. No Qt.

The repair boxes' ticks are not choices kept here: a ticked box promises a preview of the
photo on screen, and a reopened project starts without one."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from app.restore.detect import DEFAULT_DETECTOR, DEFAULT_SENSITIVITY, DETECTORS, KINDS
from app.restore.repair import DENOISE_MAX, RepairSteps

_STEPS = RepairSteps()
# the ranges the panel's controls offer; a value outside them (a hand-edited project) is clamped
RANGES = {"sensitivity": (0.0, 1.0), "denoise_strength": (0.0, DENOISE_MAX), "clip_limit": (0.5, 6.0),
          "balance_strength": (0.1, 1.0), "sharpen_amount": (0.1, 3.0)}


@dataclass(frozen=True)
class RestoreChoices:
    kinds: tuple[str, ...] = KINDS  # what Detect looks for (an empty tuple: the user unticked both)
    detector: str = DEFAULT_DETECTOR
    sensitivity: float = DEFAULT_SENSITIVITY
    denoise_strength: float | None = _STEPS.denoise_strength  # None = automatic
    clip_limit: float = _STEPS.clip_limit
    balance_strength: float = _STEPS.balance_strength
    sharpen_amount: float = _STEPS.sharpen_amount
    keep_tone: bool = _STEPS.keep_tone  # fade repair's levels stretch the lightness alone

    def steps(self, *, denoise: bool = False, fade: bool = False, balance: bool = False,
              sharpen: bool = False) -> RepairSteps:
        """The repair steps with these strengths and the given boxes ticked."""
        return replace(_STEPS, denoise=denoise, fade=fade, balance=balance, sharpen=sharpen,
                       denoise_strength=self.denoise_strength, clip_limit=self.clip_limit,
                       balance_strength=self.balance_strength, sharpen_amount=self.sharpen_amount,
                       keep_tone=self.keep_tone)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["kinds"] = list(self.kinds)
        return data

    @classmethod
    def from_dict(cls, data, notes: list[str] | None = None) -> RestoreChoices:
        """Choices read from a project: unknown keys are ignored (a newer version's), a value of
        the wrong kind keeps its default and is named in `notes`, numbers are clamped to the
        controls' ranges."""
        if not isinstance(data, dict):
            if data is not None and notes is not None:
                notes.append("the restore settings were damaged; defaults are used")
            return cls()
        default, values, bad = cls(), {}, []
        for f in fields(cls):
            if f.name not in data:
                continue
            raw = data[f.name]
            if f.name == "kinds":
                ok = isinstance(raw, list) and all(k in KINDS for k in raw)
                value = tuple(k for k in KINDS if k in raw) if ok else None
            elif f.name == "detector":
                value = raw if raw in DETECTORS else None
            elif f.name == "keep_tone":
                value = raw if isinstance(raw, bool) else None
            elif f.name == "denoise_strength" and raw is None:
                values[f.name] = None
                continue
            else:
                value = _number_in(raw, *RANGES[f.name])
            if value is None:
                bad.append(f.name)
            elif f.name == "denoise_strength" and value == 0:
                values[f.name] = None  # the panel's 0 is "auto"
            else:
                values[f.name] = value
        if bad and notes is not None:
            notes.append(f"restore settings not understood ({', '.join(bad)}); their defaults are used")
        return replace(default, **values)


def _number_in(raw, lo: float, hi: float) -> float | None:
    """`raw` as a number clamped to [lo, hi] and rounded to the controls' 0.01 (the panel shows
    no more, and would keep showing 0.33 for a 0.333 it holds); None if it is no finite number."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    try:
        value = float(raw)  # a 400-digit integer overflows here
    except OverflowError:
        return None
    return round(min(max(value, lo), hi), 2) if math.isfinite(value) else None
