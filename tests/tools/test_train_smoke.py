"""Smoke test of the training + export code: a few steps on a few synthetic crops."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is a training extra (pip install .[train])")
cv2 = pytest.importorskip("cv2")

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _load(name):
    sys.path.insert(0, str(TOOLS))
    try:
        spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(TOOLS))


@pytest.fixture(scope="module")
def tools():
    return _load("train_inpaint"), _load("export_onnx")


@pytest.fixture()
def data(tmp_path):
    """A tiny data root laid out like shared/data: smooth synthetic photos + masks."""
    rng = np.random.default_rng(0)
    photos = tmp_path / "data" / "photos" / "bsds500" / "train"
    photos.mkdir(parents=True)
    yy, xx = np.mgrid[0:96, 0:96].astype(np.float32) / 96
    for i in range(4):
        a, b, c = rng.random(3)
        im = np.stack([xx * a, yy * b, (xx + yy) * c / 2], -1) * 255
        cv2.imwrite(str(photos / f"p{i}.png"), im.astype(np.uint8))
    masks = tmp_path / "data" / "masks" / "nvidia_irregular_test"
    masks.mkdir(parents=True)
    for i in range(3):
        m = np.zeros((64, 64), np.uint8)
        m[10 + i * 5:40, 20:50] = 255
        cv2.imwrite(str(masks / f"{i * 10:05d}.png"), m)
    return tmp_path / "data"


def test_loss_decreases_and_checkpoint_resumes(tools, data, tmp_path):
    train, _ = tools
    run = tmp_path / "run"
    common = ["--run", str(run), "--data", str(data), "--width", "8", "--crop", "32",
              "--batch", "4", "--threads", "1", "--lr", "3e-3", "--log-every", "5",
              "--snapshot-every", "0"]
    res = train.train(train.parse_args(common + ["--steps", "40"]))
    h = res["history"]
    assert res["step"] == 40
    assert np.mean(h[-10:]) < np.mean(h[:5])
    assert (run / "latest.pt").exists() and (run / "log.csv").exists()

    _model, ck = train.load_model(run / "latest.pt")
    assert ck["step"] == 40
    res2 = train.train(train.parse_args(common + ["--steps", "43"]))
    assert res2["step"] == 43 and len(res2["history"]) == 3


@pytest.mark.parametrize("prefill", [False, True])
def test_model_keeps_known_pixels(tools, prefill):
    train, _ = tools
    net = train.InpaintNet(width=8, prefill=prefill).eval()
    img = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:40, 8:30] = 1
    with torch.no_grad():
        out = net.inpaint(img, mask)
        out2 = net.inpaint(img * (1 - mask), mask)  # hole contents must not matter
    keep = (mask == 0).expand_as(img)
    assert torch.equal(out[keep], img[keep])
    assert torch.allclose(out[~keep], out2[~keep])


def test_export_onnx_runs_in_onnxruntime(tools, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    train, export = tools
    net = train.InpaintNet(width=8, prefill=True).eval()
    out = tmp_path / "m.onnx"
    side = export.export(net, out, size=64, meta={"steps_trained": 0})
    assert side["input_size"] == 64 and side["contract"] == "image-only"
    assert out.with_suffix(".json").exists()
    err = export.check_onnx(out, net, size=64)
    assert err < 1e-4
    import onnx
    m = onnx.load(str(out))
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) <= 17


def test_a_run_starts_from_an_exported_model(tools, data, tmp_path):
    pytest.importorskip("onnx")
    train, export = tools
    torch.manual_seed(3)
    net = train.InpaintNet(width=8, dilations=(1, 2, 1), prefill=True).eval()
    path = tmp_path / "m.onnx"
    export.export(net, path, size=64, meta={"steps_trained": 7})
    back, steps = train.model_from_onnx(path)
    assert steps == 7 and back.dilations == (1, 2, 1) and back.width == 8
    for key, value in net.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    run = tmp_path / "run"
    out = train.train(train.parse_args(["--run", str(run), "--data", str(data), "--init-onnx", str(path),
                                        "--crop", "32", "--batch", "2", "--threads", "1", "--steps", "9",
                                        "--snapshot-every", "0", "--log-every", "1"]))
    assert out["step"] == 9 and len(out["history"]) == 2  # counted on from the model's 7 steps
    assert torch.load(run / "latest.pt", weights_only=False)["config"]["dilations"] == [1, 2, 1]


def test_push_pull_fill_is_smooth_and_exact_outside(tools):
    train, _ = tools
    img = torch.rand(1, 3, 64, 64)
    keep = torch.ones(1, 1, 64, 64)
    keep[..., 20:44, 20:44] = 0
    fill = train.push_pull_fill(img, keep)
    assert torch.allclose(fill * keep, img * keep, atol=1e-5)
    flat = torch.full_like(img, 0.3)
    assert torch.allclose(train.push_pull_fill(flat, keep), flat, atol=1e-4)  # a flat photo fills flat


def test_sigterm_writes_a_checkpoint_and_stops(tools, data, tmp_path):
    """A background run stopped with kill (SIGTERM) loses no steps: it checkpoints first."""
    import os
    import signal
    import subprocess

    run = tmp_path / "run"
    cmd = [sys.executable, str(TOOLS / "train_inpaint.py"), "--run", str(run), "--data", str(data),
           "--width", "8", "--crop", "32", "--batch", "4", "--threads", "1", "--log-every", "1",
           "--snapshot-every", "0", "--ckpt-minutes", "60"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # wait for a few logged steps, then ask it to stop
        lines.append(line)
        if line.startswith("step 3 "):
            os.kill(proc.pid, signal.SIGTERM)
            break
    out = "".join(lines) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    assert "stopped by signal" in out
    _, ck = tools[0].load_model(run / "latest.pt")
    assert ck["step"] >= 3  # the steps done before the signal are in the checkpoint


def test_ssim_loss_measures_what_the_benchmark_measures(tools):
    """The training SSIM (torch, [0,1]) equals bench/quality.py's SSIM (numpy, 0..255)
    away from the border, and the SSIM term grows as the fill departs from the photo."""
    train, _ = tools
    sys.path.insert(0, str(TOOLS.parent / "bench"))
    try:
        import quality
    finally:
        sys.path.remove(str(TOOLS.parent / "bench"))
    rng = np.random.default_rng(3)
    a = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3)).astype(np.uint8), (5, 5), 1.0)
    b = np.clip(a.astype(np.int16) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    ta, tb = (torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (a, b))
    ours = train.ssim_map(ta, tb)[0, :, 5:-5, 5:-5].mean().item()
    assert abs(ours - quality.ssim(a, b)) < 1e-4
    mask = torch.zeros(1, 1, 48, 64)
    mask[..., 10:30, 20:40] = 1
    close = ta * (1 - mask) + (ta * 0.9 + 0.05) * mask
    far = ta * (1 - mask) + tb * mask
    _, near_parts = train.losses(close, ta, mask, w_ssim=1.0)
    _, far_parts = train.losses(far, ta, mask, w_ssim=1.0)
    assert 0 < near_parts["ssim"] < far_parts["ssim"]
