"""Engine settings: one frozen dataclass, snapshotted into every job."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

#: coarse-stage methods; "model" runs the ONNX/OM generator, the others OpenCV at 512 px
METHODS = ("auto", "model", "telea", "ns")
#: what each progress stage key means, for people (the editor's progress bar, the command line)
STAGE_TEXT = {"prepare": "Preparing", "model": "Filling", "aggregate": "Adding detail", "paste": "Pasting back"}
BACKENDS = ("auto", "cpu", "npu")


@dataclass(frozen=True)
class InpaintSettings:
    method: str = "auto"  # auto = the bundled/selected model when present, else OpenCV Telea
    model_path: str | None = None  # None = models/default.onnx
    backend: str = "auto"
    # context box around each hole region: margin = max(min, fraction * hole box side)
    context_fraction: float = 0.5
    context_min_px: int = 48
    # the coarse stage for OpenCV methods runs at this square size
    coarse_size: int = 512
    # contextual residual aggregation
    cra: bool = True
    attention_grid: int = 32  # patches per box side, as HiFill
    attention_scale: float = 200.0  # softmax scale on cosine similarity: high = peaked (averaging cancels texture)
    # where a hole patch's best sources are nearly tied, sharpen its row until the best
    # outweighs the 4th best by e**peak (0 = off)
    attention_peak: float = 8.0
    # residual split level: detail above this size comes from the photo. 0 = automatic:
    # the model's own input size (a trained model's fill is trusted up to its resolution;
    # measured best PSNR at sharpness >= 0.8), 128 for the blurrier OpenCV fills
    detail_size: int = 0
    # how much of the photo's own detail the fill carries, as a share of the detail energy of
    # the photo around each hole patch: 0 = a smooth fill (best PSNR/SSIM), 1 = as grainy as
    # its surroundings (measured in bench/quality.py: sharper, a little lower SSIM)
    texture: float = 1.0
    # scale each hole patch's carried detail to at most the energy of the photo around it
    # (off: the attention's transplant as it is, HiFill's behaviour)
    match_energy: bool = True
    # attention prefers sources whose detail energy matches what the hole patch should carry:
    # score penalty per unit of |ln RMS ratio| (0 = match on the coarse fill alone)
    energy_weight: float = 0.3
    chunk_columns: int = 3072  # residual columns per aggregation chunk (the NPU matmul width)
    # the NPU's fixed-shape MatMul chunk, MxN or MxKxN (models/matmul_MxKxN.om); a smaller installed
    # chunk model is used when this one does not fit in the device memory
    npu_chunk: str = "1024x3072"
    # a box side above this is worked at reduced scale (bounded memory on huge holes)
    max_work_side: int = 4096
    feather_px: int = 3  # seam width inside the hole edge
    # within this many coarse pixels of the hole edge the fill's base comes from the photo at full
    # resolution (OpenCV Telea between the photo and the coarse fill further in): the coarse
    # stage sees a box at 1/s scale, and a scratch a few px wide is a blurred band in it (0 = off)
    edge_band: float = 2.0
    max_megapixels: float = 100.0  # refuse photos above this (decode alone would exhaust memory)

    def with_(self, **changes) -> InpaintSettings:
        return replace(self, **changes)

    def with_choices_of(self, other: InpaintSettings) -> InpaintSettings:
        """These settings with the choices a user makes per run in the editor (the Run panel's
        method and texture) taken from `other`: they carry over to the next photo opened."""
        return replace(self, method=other.method, texture=other.texture)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InpaintSettings:
        """Build from a dict, ignoring unknown keys (files written by newer versions)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
