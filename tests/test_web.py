"""The browser page: the ONNX model against the SavedModel, and the page in headless Chromium.

`export_savedmodel.py --web` runs once (module fixture) on a tiny release.
The browser tests need npm (the page vendors onnxruntime-web) and Chromium;
without them they skip, unless `EXCHANGE_ST_REQUIRE_BROWSER=1` (CI sets it),
where a missing tool fails them.
"""

import base64
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from exchange_st.data import image_io
from exchange_st.saving import quantization
from exchange_st.web import onnx_export, page
from tools import browser

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIRED = os.environ.get("EXCHANGE_ST_REQUIRE_BROWSER") == "1"


def _require_tool(found, what):
    if not found:
        if REQUIRED:
            pytest.fail(f"EXCHANGE_ST_REQUIRE_BROWSER=1 but {what} is missing")
        pytest.skip(f"{what} is missing")


@pytest.fixture(scope="module")
def exported(tiny_release, tmp_path_factory):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    _require_tool(shutil.which("npm"), "npm")
    tmp = tmp_path_factory.mktemp("web")
    export_dir = tmp / "export"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "export_savedmodel.py"), f"--export_dir={export_dir}"]
        + ["--web"],
        cwd=str(tmp),
        env=dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="2",
            EXCHANGE_ST_PRETRAINED=tiny_release["path"],
            EXCHANGE_ST_CACHE=os.environ.get("EXCHANGE_ST_CACHE", str(tmp / "cache")),
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"saved_model": str(export_dir), "web": export_dir / "web", "log": proc.stderr}


def test_the_export_writes_a_page_with_its_model_and_vendored_runtime(exported):
    web = exported["web"]
    names = set(os.listdir(web))
    assert {"index.html", "app.js", "style.css", "model.onnx", "model.json", "vendor"} <= names
    assert set(page.VENDOR_FILES) <= set(os.listdir(web / "vendor"))
    info = json.loads((web / "model.json").read_text())
    assert info["model"] == "model.onnx" and info["bytes"] == os.path.getsize(web / "model.onnx")
    assert info["name"].startswith("EFANet, pretrained release")
    # Offline: the page names no other host.
    for name in page.PAGE_FILES:
        text = (web / name).read_text()
        assert "http://" not in text and "https://" not in text, name
    assert "ONNX Runtime vs the SavedModel: mean" in exported["log"]


def test_onnx_kernels_are_the_releases_int8_numbers(exported, tiny_release):
    """Every large kernel of the release is int8 again; ONNX Runtime matches the SavedModel."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(exported["web"] / "model.onnx"))
    initializers = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    int8 = [name for name, w in initializers.items() if w.dtype == np.int8]
    kernels = [
        int(np.prod(v.shape))
        for key, v in quantization.inference_variables(tiny_release["model"]).items()
        if key.endswith("kernel") and np.prod(v.shape) >= onnx_export.MIN_COMPACT_ELEMENTS
    ]
    assert sorted(initializers[name].size for name in int8) == sorted(kernels)
    for name in int8:
        base = name[: -len("/int8")]
        q, scale = initializers[name], initializers[base + "/scale"]
        assert np.abs(q).max() <= 127 and scale.dtype == np.float32
    dequantize = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"]
    assert len(dequantize) == len(int8)
    pairs = [(np.random.default_rng(1).uniform(size=(37, 45, 3)).astype(np.float32),) * 2]
    error = onnx_export.check(exported["web"] / "model.onnx", exported["saved_model"], pairs, 0.5)
    # The random VGG of the tiny release is float32, stored as float16 here (what a
    # real release ships it as), which costs ~1e-3 at most.
    assert error["max_abs"] < 0.01 and error["mean_abs"] < 1e-3


def test_compact_storage_is_lossless_on_the_int8_grid_and_float16_elsewhere():
    """`_store_compactly` on a two-op graph: a Conv on the release grid and a MatMul off it."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    q, scale = quantization.quantize(rng.normal(size=(3, 3, 32, 16)).astype(np.float32))
    conv_w = np.transpose(quantization.dequantize(q, scale), (3, 2, 0, 1))  # [out, in, kH, kW]
    mm_w = rng.normal(size=(16, 300)).astype(np.float32)

    def model(conv, mm):
        graph = helper.make_graph(
            [
                helper.make_node("Conv", ["x", "conv_w"], ["y"], pads=[1, 1, 1, 1]),
                helper.make_node("Transpose", ["y"], ["t"], perm=[0, 2, 3, 1]),
                helper.make_node("MatMul", ["t", "mm_w"], ["z"]),
            ],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 5, 6])],
            [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 5, 6, 300])],
            [numpy_helper.from_array(conv, "conv_w"), numpy_helper.from_array(mm, "mm_w")],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx_export.OPSET)])

    x = {"x": rng.uniform(size=(1, 32, 5, 6)).astype(np.float32)}

    def run(proto):
        return ort.InferenceSession(proto.SerializeToString()).run(None, x)[0]

    compact = model(conv_w, mm_w)
    result = onnx_export.OnnxResult(path="", bytes=0, weights="compact")
    onnx_export._store_compactly(compact, result)
    onnx.checker.check_model(compact)
    stored = {i.name: i.data_type for i in compact.graph.initializer}
    assert (
        stored["conv_w/int8"] == TensorProto.INT8 and stored["mm_w/float16"] == TensorProto.FLOAT16
    )
    assert (result.int8_elements, result.float16_elements) == (conv_w.size, mm_w.size)
    # The int8 Conv is exact; the MatMul computes with its float16-rounded weights.
    want = run(model(conv_w, mm_w.astype(np.float16).astype(np.float32)))
    tol = 1e-5 * np.abs(want).max()
    np.testing.assert_allclose(run(compact), want, rtol=0, atol=tol)
    assert np.abs(run(model(conv_w, mm_w)) - want).max() > 10 * tol


@pytest.fixture(scope="module")
def in_chromium(exported):
    """The page, opened with a fixed pair preset by URL and run: its canvas and screen."""
    _require_tool(browser.find_chromium(), "Chromium")
    web = exported["web"]
    rng = np.random.default_rng(3)
    content = rng.uniform(size=(40, 48, 3)).astype(np.float32)
    style = rng.uniform(size=(32, 48, 3)).astype(np.float32)
    image_io.save_image(web / "content.png", content)
    image_io.save_image(web / "style.png", style)
    query = "content=content.png&style=style.png&alpha=0.7&max_size=64&autorun=1"
    with browser.serve(web) as base, browser.Chromium() as chromium:
        tab = chromium.open(f"{base}/index.html?{query}")
        tab.wait_for(page.JS_FINISHED, timeout=300)
        width, height, pixels = tab.evaluate(
            """(() => {
              const c = document.getElementById('result');
              const rgba = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              let s = ''; for (const b of rgba) s += String.fromCharCode(b);
              return [c.width, c.height, btoa(s)];
            })()"""
        )
        facts = tab.evaluate(
            """({
              state: document.body.dataset.state,
              status: document.getElementById('status').textContent,
              save: document.getElementById('save').href,
              alpha: document.getElementById('alpha-value').textContent,
              resources: performance.getEntriesByType('resource').map((r) => r.name),
            })"""
        )
        if facts["state"] == "done":
            tab.wait_for(page.JS_SAVE_READY, timeout=30)
        screenshot = tab.screenshot()
    rgba = np.frombuffer(base64.b64decode(pixels), np.uint8).reshape(height, width, 4)
    return dict(facts, base=base, rgba=rgba, content=content, style=style, screenshot=screenshot)


def test_the_page_stylizes_as_the_saved_model_does(in_chromium, exported):
    assert in_chromium["state"] == "done", in_chromium["status"]
    assert in_chromium["status"].startswith("Done: 48×40 px, α 0.70")
    assert in_chromium["alpha"] == "0.70"
    # The PNGs hold 8-bit pixels: the SavedModel sees what the page read.
    content = np.round(in_chromium["content"] * 255) / 255
    style = np.round(in_chromium["style"] * 255) / 255
    loaded = tf.saved_model.load(exported["saved_model"])
    want = loaded.stylize(content[None], style[None], 0.7).numpy()[0]
    want = np.round(np.clip(want, 0, 1) * 255)
    got = in_chromium["rgba"][..., :3].astype(np.float64)
    assert in_chromium["rgba"].shape == (40, 48, 4) and (in_chromium["rgba"][..., 3] == 255).all()
    assert want.std() > 10  # a visible image, not a flat one
    # Within 1/255 per pixel plus the ONNX model's float16 VGG (test_onnx_...: < 1e-3
    # mean): 2 levels at most, a quarter level on average.
    diff = np.abs(got - want)
    assert diff.max() <= 2 and diff.mean() <= 0.25, (diff.max(), diff.mean())


def test_the_page_loads_nothing_from_other_hosts(in_chromium):
    resources = in_chromium["resources"]
    assert any(r.endswith("/model.onnx") for r in resources)
    assert any(r.endswith(".wasm") for r in resources)
    assert all(r.startswith(in_chromium["base"]) or r.startswith("blob:") for r in resources)
    assert in_chromium["screenshot"][:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_times_each_size_the_page_reports(in_chromium, exported, tmp_path):
    web = exported["web"]
    output = tmp_path / "web.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.web", f"--web_dir={web}", f"--output={output}"]
        + [f"--content={web / 'content.png'}", f"--style={web / 'style.png'}"]
        + ["--sizes=24,40", "--rounds=2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(output.read_text())
    assert set(result["seconds"]) == {"24", "40"}
    assert all(len(v) == 2 and min(v) >= 0 for v in result["seconds"].values())
    assert result["downloads"]["model.onnx"] == os.path.getsize(web / "model.onnx")
    assert set(result["downloads"]) == {"model.onnx"} | {f"vendor/{n}" for n in page.VENDOR_FILES}
    assert "24 px: median" in proc.stdout and "40 px: median" in proc.stdout
