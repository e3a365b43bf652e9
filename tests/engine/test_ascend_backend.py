"""The Ascend backend against the in-process `acl` stand-in (tests/engine/acl_double)."""

from __future__ import annotations

import json
import sys
import threading

import numpy as np
import onnxruntime as ort
import pytest

from app.engine.backends.ascend import AscendBackend, matmul_om_name, open_npu_backend
from app.engine.backends.tiling import TileShape
from app.engine.errors import BackendFailure, BackendUnavailable
from app.engine.model_spec import load_spec
from tests.engine.acl_double import ACL_DEVICE, make_acl
from tests.engine.acl_double.helpers import convert, tiny_generator

SMALL = TileShape(64, 64, 96)


@pytest.fixture
def model(tmp_path):
    path = tiny_generator(tmp_path)
    convert(path, SMALL)
    return path


def feeds(seed=0, size=64):
    rng = np.random.default_rng(seed)
    mask = np.zeros((1, 1, size, size), np.float32)
    mask[..., 10:40, 20:50] = 1
    return {"image": rng.random((1, 3, size, size), np.float32), "mask": mask}


def cpu_reference(path, inputs):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, inputs)[0]


def test_infer_matches_cpu_within_fp16(acl, model):
    backend = open_npu_backend(load_spec(model), chunk=SMALL, acl=None)  # `import acl` finds the stand-in
    try:
        for seed in range(3):
            inputs = feeds(seed)
            got = backend.infer(inputs)
            ref = cpu_reference(model, inputs)
            assert set(got) == {"inpainted"} and got["inpainted"].shape == ref.shape
            assert got["inpainted"].dtype == np.float32
            np.testing.assert_allclose(got["inpainted"], ref, atol=5e-3)
            assert not np.array_equal(got["inpainted"], ref)  # it really ran at reduced precision
    finally:
        backend.close()
    assert acl.double.init_calls == 1


def test_chunked_npu_matmul_equals_unchunked(acl, model):
    backend = open_npu_backend(load_spec(model), chunk=SMALL)
    rng = np.random.default_rng(3)
    try:
        for m, k, n in [(64, 64, 96), (100, 150, 200), (7, 300, 31), (130, 64, 500)]:
            a = rng.random((m, k), np.float32)
            a /= a.sum(axis=1, keepdims=True)  # attention rows: softmax weights
            b = rng.standard_normal((k, n)).astype(np.float32) * 40  # residual values
            got = backend.matmul(a, b)
            exact16 = a.astype(np.float16).astype(np.float32) @ b.astype(np.float16).astype(np.float32)
            np.testing.assert_allclose(got, exact16, rtol=1e-5, atol=1e-4)  # same numbers, only tiled
            np.testing.assert_allclose(got, a @ b, atol=0.05)  # and fp16-close to the float32 product
            executions = next(m_ for m_ in acl.double.models.values() if m_.path.endswith(matmul_om_name(SMALL)))
            assert executions.executions > 0
    finally:
        backend.close()


def test_device_buffers_are_allocated_once_and_teardown_leaves_nothing(acl, model):
    backend = open_npu_backend(load_spec(model), chunk=SMALL)
    mallocs = sum(1 for call, _ in acl.double.calls if call == "rt.malloc")
    for seed in range(3):
        backend.infer(feeds(seed))
        backend.matmul(np.ones((70, 70), np.float32), np.ones((70, 200), np.float32))
    assert sum(1 for call, _ in acl.double.calls if call == "rt.malloc") == mallocs
    assert acl.double.live()["device_bytes"] > 0
    backend.close()
    assert all(v == 0 for v in acl.double.live().values()), acl.double.live()
    assert acl.double.violations == [] and backend.teardown_errors == []
    # the documented order: buffers, datasets, unload, desc, pinned memory, stream, context, device
    order = [c for c, _ in acl.double.calls[len(acl.double.calls) - 40:]]
    tail = [c for c in order if c in ("mdl.destroy_dataset", "mdl.unload", "mdl.destroy_desc", "rt.free_host",
                                      "rt.destroy_stream", "rt.destroy_context", "rt.reset_device")]
    assert tail[-3:] == ["rt.destroy_stream", "rt.destroy_context", "rt.reset_device"]
    first_unload = tail.index("mdl.unload")
    assert tail[first_unload - 1] == "mdl.destroy_dataset" and tail[first_unload + 1] == "mdl.destroy_desc"
    with pytest.raises(BackendFailure, match="closed"):
        backend.infer(feeds())


def test_the_leak_detector_catches_a_backend_that_skips_teardown(acl, model):
    backend = open_npu_backend(load_spec(model), chunk=SMALL)
    backend._generator = None  # forget a model: its buffers are never freed
    backend.close()
    assert acl.double.live()["device_bytes"] > 0 and acl.double.violations


def test_execute_error_names_call_code_and_recent_message(acl, model):
    backend = open_npu_backend(load_spec(model), chunk=SMALL)
    try:
        acl.double.inject("mdl.execute", 507011)
        with pytest.raises(BackendFailure) as info:
            backend.infer(feeds())
        text = str(info.value)
        assert "acl.mdl.execute" in text and "507011" in text and "EE9999" in text
        assert backend.infer(feeds())["inpainted"].shape == (1, 3, 64, 64)  # the next call works again
    finally:
        backend.close()
    assert all(v == 0 for v in acl.double.live().values())


def test_no_device_is_unavailable(monkeypatch, model):
    monkeypatch.setitem(sys.modules, "acl", make_acl(devices=0))
    with pytest.raises(BackendUnavailable, match=r"rt.get_device_count failed with code 207004"):
        open_npu_backend(load_spec(model), chunk=SMALL)


@pytest.mark.parametrize("call,code", [("rt.malloc", 207001), ("mdl.load_from_file", 207018),
                                       ("rt.set_device", 507033), ("rt.malloc_host", 207001)])
def test_failure_while_loading_is_unavailable_and_releases_everything(acl, model, call, code):
    acl.double.inject(call, code, after=1 if call == "rt.malloc" else 0)
    with pytest.raises(BackendUnavailable) as info:
        open_npu_backend(load_spec(model), chunk=SMALL)
    assert f"acl.{call} failed with code {code}" in str(info.value)
    assert all(v == 0 for v in acl.double.live().values()), acl.double.live()
    assert acl.double.violations == []


def test_engine_thread_owns_the_context(acl, model):
    box = {}

    def engine():
        box["backend"] = open_npu_backend(load_spec(model), chunk=SMALL)
        box["out"] = box["backend"].infer(feeds())

    thread = threading.Thread(target=engine, name="engine")
    thread.start()
    thread.join()
    backend = box["backend"]
    contexts = [c for c in acl.double.contexts.values() if not c.default]
    assert [c.thread_name for c in contexts] == ["engine"]
    assert backend.owner_thread == thread.ident
    # another thread is refused by the backend, and ACL itself has no context there
    with pytest.raises(BackendFailure, match="engine thread"):
        backend.infer(feeds())
    assert acl.rt.malloc(64, 2) == (0, 107002)
    backend.close()  # close binds the context itself, so shutdown works from any thread
    assert all(v == 0 for v in acl.double.live().values())


def test_device_run_mode_without_bytes_helpers(monkeypatch, model):
    module = make_acl(run_mode=ACL_DEVICE, bytes_helpers=False)
    monkeypatch.setitem(sys.modules, "acl", module)
    backend = open_npu_backend(load_spec(model), chunk=SMALL)
    try:
        np.testing.assert_allclose(backend.infer(feeds())["inpainted"], cpu_reference(model, feeds()), atol=5e-3)
        a, b = np.ones((10, 70), np.float32), np.ones((70, 100), np.float32)
        np.testing.assert_allclose(backend.matmul(a, b), a @ b)
    finally:
        backend.close()
    assert all(v == 0 for v in module.double.live().values())


def test_memcpy_kind_must_follow_run_mode(acl, model):
    backend = open_npu_backend(load_spec(model), chunk=SMALL)
    try:
        backend.run_mode = ACL_DEVICE  # a backend that picked the wrong kind for this host
        with pytest.raises(BackendFailure, match="rt.memcpy failed with code 100000"):
            backend.infer(feeds())
    finally:
        backend.close()


def test_chunk_shape_is_chosen_to_fit_device_memory(monkeypatch, tmp_path):
    path = tiny_generator(tmp_path)
    big = TileShape(1024, 1024, 3072)
    convert(path, big)
    convert(path, SMALL)
    module = make_acl(memory_bytes=20 << 20)  # 20 MiB: the 28 MiB default chunk cannot fit
    monkeypatch.setitem(sys.modules, "acl", module)
    backend = open_npu_backend(load_spec(path))
    try:
        assert backend.tile == SMALL
    finally:
        backend.close()
    monkeypatch.setitem(sys.modules, "acl", make_acl(memory_bytes=1 << 30))
    backend = open_npu_backend(load_spec(path))
    assert backend.tile == big  # the setting's default when it fits
    backend.close()


def test_no_chunk_fits(monkeypatch, model):
    roomy = make_acl()
    monkeypatch.setitem(sys.modules, "acl", roomy)
    backend = open_npu_backend(load_spec(model), chunk=SMALL)
    generator_bytes = roomy.double.live()["device_bytes"] - SMALL.device_bytes() - 3 * 64  # less the chunk's buffers
    backend.close()
    # room for the generator and 40 kB more: the 65 kB chunk does not fit
    monkeypatch.setitem(sys.modules, "acl", make_acl(memory_bytes=generator_bytes + 40_000))
    with pytest.raises(BackendUnavailable, match=r"MiB free; the smallest MatMul chunk model \(64x64x96\) needs"):
        open_npu_backend(load_spec(model), chunk=SMALL)


def test_missing_om_files_are_unavailable(acl, tmp_path):
    path = tiny_generator(tmp_path)
    with pytest.raises(BackendUnavailable, match=r"no NPU model tiny.om .*tools/atc"):
        open_npu_backend(load_spec(path))
    convert(path, SMALL)
    (tmp_path / matmul_om_name(SMALL)).unlink()
    with pytest.raises(BackendUnavailable, match="no MatMul chunk model"):
        open_npu_backend(load_spec(path))
    assert all(v == 0 for v in acl.double.live().values())


def test_a_corrupt_om_is_unavailable(acl, model):
    model.with_suffix(".om").write_bytes(b"\x00not an offline model")
    with pytest.raises(BackendUnavailable, match="load_from_file failed with code 100012"):
        open_npu_backend(load_spec(model), chunk=SMALL)


def test_acl_init_runs_once_per_process(acl, model):
    for _ in range(3):
        open_npu_backend(load_spec(model), chunk=SMALL).close()
    assert acl.double.init_calls == 1
    assert acl.init() == 100002  # the stand-in enforces the rule too


def test_recipe_json_compiles_and_float16_chunk_runs(acl, tmp_path):
    from tools.atc.make_recipe import main, matmul_op_description

    path = tiny_generator(tmp_path)
    assert main(["--model", str(path), "--chunk", "64x96", "--out", str(tmp_path / "atc")]) == 0
    op = json.loads((tmp_path / "atc" / "matmul_64x64x96.json").read_text())
    assert op == matmul_op_description(TileShape(64, 64, 96))
    script = (tmp_path / "atc" / "convert.sh").read_text()
    assert "--framework=5" in script and "--singleop=${HERE}/matmul_64x64x96.json" in script
    assert "--input_shape=image:1,3,64,64;mask:1,1,64,64" in script and str(tmp_path) not in script
    convert(path, SMALL, matmul_type="float16")
    backend = open_npu_backend(load_spec(path), chunk=SMALL)
    try:
        a = np.random.default_rng(1).random((50, 80), np.float32)
        np.testing.assert_allclose(backend.matmul(a, a.T), a @ a.T, rtol=2e-3, atol=2e-2)
    finally:
        backend.close()


def test_backend_without_pyacl_says_so(monkeypatch, model):
    monkeypatch.setitem(sys.modules, "acl", None)  # import acl -> ImportError
    with pytest.raises(BackendUnavailable, match="pyacl is not available"):
        AscendBackend().open()
