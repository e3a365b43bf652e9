"""Selection and fallback with the NPU backend (issue 5 #4, #6), on the `acl` stand-in."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from app.engine import InpaintSettings, inpaint
from app.engine.backends import select_backend
from app.engine.backends.ascend import AscendBackend
from app.engine.backends.onnx import OnnxBackend
from app.engine.backends.tiling import TileShape
from app.engine.errors import BackendUnavailable
from app.engine.model_spec import load_spec
from app.io.images import read_image, read_mask
from tests.engine.acl_double import make_acl
from tests.engine.acl_double.helpers import convert, tiny_generator

RESOURCES = __import__("pathlib").Path(__file__).resolve().parents[2] / "resources"
DEFAULT = TileShape(1024, 1024, 3072)


@pytest.fixture
def model(tmp_path):
    path = tiny_generator(tmp_path, size=128)
    convert(path, DEFAULT)
    return path


def photos():
    rgb = read_image(RESOURCES / "sample.png").rgb
    mask = read_mask(RESOURCES / "sample_mask.png")
    rocket_rgb = read_image(RESOURCES / "rocket.jpg").rgb
    rocket_mask = np.zeros(rocket_rgb.shape[:2], np.uint8)
    rocket_mask[120:260, 280:360] = 255  # the rocket
    return [(rgb, mask), (rocket_rgb, rocket_mask)]


def is_clean(module) -> bool:
    return all(v == 0 for v in module.double.live().values()) and not module.double.violations


# --- selection --------------------------------------------------------------------------------
def test_auto_without_pyacl_is_cpu_without_npu_talk(monkeypatch, model):
    """A machine without Huawei's toolkit is every PC: no note about NPU models on each run."""
    monkeypatch.setitem(sys.modules, "acl", None)
    backend, line = select_backend("auto", load_spec(model))
    assert isinstance(backend, OnnxBackend)
    assert line == f"using {backend.name}"
    with pytest.raises(BackendUnavailable, match="pyacl"):  # asked for by name, it says why not
        select_backend("npu", load_spec(model))


def test_auto_picks_the_npu_when_everything_loads(acl, model):
    backend, line = select_backend("auto", load_spec(model))
    try:
        assert isinstance(backend, AscendBackend) and backend.name == "npu (Ascend)"
        assert "1024x1024x3072" in line
    finally:
        backend.close()
    assert is_clean(acl)


@pytest.mark.parametrize("devices,call,code", [(0, None, 207004), (1, "mdl.load_from_file", 207018),
                                               (1, "rt.malloc", 207001)])
def test_auto_falls_back_to_cpu_when_the_npu_cannot_start(monkeypatch, model, devices, call, code):
    module = make_acl(devices=devices)
    if call:
        module.double.inject(call, code)
    monkeypatch.setitem(sys.modules, "acl", module)
    backend, line = select_backend("auto", load_spec(model))
    assert isinstance(backend, OnnxBackend)
    assert f"code {code}" in line and line.startswith("using cpu")
    assert is_clean(module)
    with pytest.raises(BackendUnavailable, match=f"The NPU backend cannot run: .*code {code}"):
        module.double.inject(call, code) if call else None
        select_backend("npu", load_spec(model))


def test_auto_without_the_om_files_says_so(acl, tmp_path):
    path = tiny_generator(tmp_path)
    _, line = select_backend("auto", load_spec(path))
    assert "no NPU model tiny.om" in line


# --- results ------------------------------------------------------------------------------------
def test_npu_result_equals_cpu_within_fp16_on_real_photos(acl, model):
    settings = InpaintSettings(method="model", model_path=str(model))
    npu = AscendBackend(chunk="1024x3072")
    cpu = OnnxBackend(threads=1)
    try:
        for rgb, mask in photos():
            got = inpaint(rgb, mask, settings, backend=npu)
            ref = inpaint(rgb, mask, settings, backend=cpu)
            assert got.backend == "npu (Ascend)" and ref.backend.startswith("cpu")
            hole = mask > 0
            np.testing.assert_array_equal(got.image[~hole], rgb[~hole])  # outside: bit-identical
            diff = np.abs(got.image.astype(int) - ref.image.astype(int))[hole]
            print(f"npu vs cpu in the hole: mean {diff.mean():.3f}, max {diff.max()} levels")
            assert diff.mean() < 0.5 and diff.max() <= 6, (diff.mean(), diff.max())
            assert not np.array_equal(got.image, ref.image)  # fp16 on one side: not the same numbers
        matmul_runs = [m.executions for m in acl.double.models.values() if "matmul" in m.path]
        assert matmul_runs and matmul_runs[0] > 0  # the aggregation really ran on the NPU chunk model
    finally:
        npu.close()
        cpu.close()
    assert is_clean(acl)


# --- failure during a job -------------------------------------------------------------------------
@pytest.mark.parametrize("call,code", [("mdl.execute", 507011), ("rt.memcpy", 207018)])
def test_npu_failure_mid_job_reruns_on_cpu_with_the_message(acl, model, call, code):
    rgb, mask = photos()[1]
    settings = InpaintSettings(method="model", model_path=str(model), backend="auto")
    ref = inpaint(rgb, mask, settings.with_(backend="cpu"))
    acl.double.inject(call, code, after=1 if call == "mdl.execute" else 4)  # the generator runs, then a chunk fails
    result = inpaint(rgb, mask, settings)
    assert result.backend.startswith("cpu")
    note = result.notes[-1]
    assert "fell back to the CPU" in note and f"acl.{call} failed with code {code}" in note
    np.testing.assert_array_equal(result.image, ref.image)  # the CPU rerun is the CPU result
    assert is_clean(acl)  # the pipeline's own NPU backend was closed after the failure


def test_npu_failure_with_a_long_lived_backend_keeps_it_for_the_next_job(acl, model):
    rgb, mask = photos()[1]
    settings = InpaintSettings(method="model", model_path=str(model))
    npu = AscendBackend()
    try:
        acl.double.inject("mdl.execute", 507011)
        first = inpaint(rgb, mask, settings, backend=npu)
        second = inpaint(rgb, mask, settings, backend=npu)
        assert first.backend.startswith("cpu") and "507011" in first.notes[-1]
        assert second.backend == "npu (Ascend)" and not second.notes
    finally:
        npu.close()
    assert is_clean(acl)


# --- the engine thread and the command line ----------------------------------------------------------
def test_engine_thread_owns_the_npu_context_and_falls_back(qtbot, acl, model):
    from app.engine.worker import EngineWorker

    rgb, mask = photos()[1]
    settings = InpaintSettings(method="model", model_path=str(model), backend="auto")
    worker = EngineWorker()
    worker.start()
    try:
        with qtbot.waitSignal(worker.finished, timeout=120_000) as first:
            worker.submit(rgb, mask, settings)
        result = first.args[1]
        assert result.backend == "npu (Ascend)" and result.notes[0].startswith("using npu (Ascend)")
        contexts = [c for c in acl.double.contexts.values() if not c.default]
        assert len(contexts) == 1 and contexts[0].thread != threading.main_thread().ident
        # every ACL call so far was made on that one engine thread
        assert {thread for _, thread in acl.double.calls} == {contexts[0].thread}

        acl.double.inject("mdl.execute", 507011)
        with qtbot.waitSignal(worker.finished, timeout=120_000) as second:
            worker.submit(rgb, mask, settings)
        result = second.args[1]
        assert result.backend.startswith("cpu") and "fell back to the CPU" in result.notes[-1]
        assert "507011" in result.notes[-1]
    finally:
        worker.shutdown()
    assert is_clean(acl), (acl.double.live(), acl.double.violations)  # shutdown closed the backend on its thread


def test_command_line_warns_on_fallback_and_names_the_backend(acl, model, tmp_path, capsys):
    from app.cli.main import main

    out = tmp_path / "out.png"
    args = ["inpaint", str(RESOURCES / "sample.png"), "--mask", str(RESOURCES / "sample_mask.png"),
            "-o", str(out), "--model", str(model)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "using npu (Ascend)" in captured.err and "on npu (Ascend)" in captured.out
    acl.double.inject("mdl.execute", 507011)
    assert main(args) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "warning: The NPU failed during this job, which fell back to the CPU" in captured.err
    assert "on cpu (onnxruntime)" in text
    assert is_clean(acl)


def test_command_line_npu_without_pyacl_fails_with_the_reason(monkeypatch, model, tmp_path, capsys):
    from app.cli.main import main

    monkeypatch.setitem(sys.modules, "acl", None)
    code = main(["inpaint", str(RESOURCES / "sample.png"), "--mask", str(RESOURCES / "sample_mask.png"),
                 "-o", str(tmp_path / "out.png"), "--model", str(model), "--backend", "npu"])
    err = capsys.readouterr().err
    assert code != 0 and "The NPU backend cannot run: pyacl is not available" in err
    assert "Traceback" not in err and not (tmp_path / "out.png").exists()


def test_the_chunk_shape_is_a_setting(acl, tmp_path):
    path = tiny_generator(tmp_path, size=128)
    convert(path, TileShape(256, 256, 768))
    rgb, mask = photos()[0]
    settings = InpaintSettings(method="model", model_path=str(path), npu_chunk="256x768")
    result = inpaint(rgb, mask, settings)
    assert result.backend == "npu (Ascend)" and "256x256x768 MatMul chunks" in result.notes[0]
    result = inpaint(rgb, mask, settings.with_(npu_chunk="lots"))
    assert result.backend.startswith("cpu") and "chunk setting is not usable" in result.notes[0]
    assert is_clean(acl)


def test_editor_run_tells_the_user_when_the_npu_fell_back(qtbot, acl, model):
    from app.canvas.document import Document
    from app.canvas.session import EditSession
    from app.ui.run_controller import RunController

    rgb, mask = photos()[1]
    session = EditSession(Document(rgb, settings=InpaintSettings(model_path=str(model))))
    session.add_layer("Rocket", mask=mask)
    runner = RunController(session)
    runner.method = "model"
    notices = []
    runner.notice.connect(notices.append)
    try:
        with qtbot.waitSignal(runner.finished, timeout=120_000) as first:
            assert runner.start()
        assert first.args[0].backend == "npu (Ascend)" and notices == []
        acl.double.inject("mdl.execute", 507011)
        with qtbot.waitSignal(runner.finished, timeout=120_000) as second:
            assert runner.start()
        assert second.args[0].backend.startswith("cpu")  # the status bar shows the backend that ran
        assert len(notices) == 1 and "fell back to the CPU" in notices[0] and "507011" in notices[0]
    finally:
        runner.shutdown()
    assert is_clean(acl)
