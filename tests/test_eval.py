"""Tests of the perceptual-loss metric and the eval.py benchmark (random VGG, tiny images)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from exchange_st.baselines import adain as adain_lib
from exchange_st.data import image_io
from exchange_st.evaluation import eval_config, eval_lib, eval_methods, metrics
from exchange_st.nn import losses
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.nn.vgg import FEATURE_NAMES, VGGEncoder
from exchange_st.saving import loader, release

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A deliberately small exchange model, so a checkpoint is quick to write.
_SMALL_EFANET = dict(
    code_dim=16,
    compressor_filters=[4, 4, 4, 4, 4],
    num_pre_fusion_blocks=0,
    num_post_fusion_blocks=0,
    upsample_filters=[8, 8, 8],
)


@pytest.fixture(scope="module")
def encoder():
    keras.utils.set_random_seed(3)
    return VGGEncoder(None)


def _images(b, h, w, seed=0):
    return tf.random.stateless_uniform([b, h, w, 3], seed=[seed, 2])


def _write_images(directory, count, size, seed, ext=".png"):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = size
        pixels = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(directory, f"img{i}{ext}"))
    return directory


# ----------------------------------------------------------------------------
# Metric.
# ----------------------------------------------------------------------------


def test_metric_is_zero_for_identical_images(encoder):
    content, style = _images(1, 32, 40, seed=1), _images(1, 48, 32, seed=2)
    own_content = metrics.perceptual_loss(encoder, content, content, style)
    assert own_content["content"] == pytest.approx(0.0, abs=1e-12)
    assert own_content["style"] > 0.0
    own_style = metrics.perceptual_loss(encoder, style, style, style)
    for key in ("content", "style", "total", "meanstd_style"):
        assert own_style[key] == pytest.approx(0.0, abs=1e-9)


def test_metric_symmetry_and_definition(encoder):
    a, b, c = _images(1, 32, 32, seed=3), _images(1, 32, 32, seed=4), _images(1, 32, 32, seed=5)
    ab = metrics.perceptual_loss(encoder, a, c, b)
    ba = metrics.perceptual_loss(encoder, b, c, a)
    # Gram MSE and mean/std loss are symmetric in output and style.
    assert ab["style"] == pytest.approx(ba["style"], rel=1e-5)
    assert ab["meanstd_style"] == pytest.approx(ba["meanstd_style"], rel=1e-5)
    # Content MSE is symmetric in output and content.
    ac = metrics.perceptual_loss(encoder, a, c, b)
    ca = metrics.perceptual_loss(encoder, c, a, b)
    assert ac["content"] == pytest.approx(ca["content"], rel=1e-5)
    assert ab["total"] == pytest.approx(ab["content"] + ab["style"], rel=1e-6)
    assert ab["style"] == pytest.approx(sum(ab[f"style/{n}"] for n in FEATURE_NAMES), rel=1e-5)
    # Eq. 4 by hand: Gram = F^T F / (h w), MSE over the C x C entries.
    fa, fb = encoder(a), encoder(b)
    for name, x, y in zip(FEATURE_NAMES, fa, fb):
        gx = np.einsum("bhwc,bhwd->bcd", x, x) / (x.shape[1] * x.shape[2])
        gy = np.einsum("bhwc,bhwd->bcd", y, y) / (y.shape[1] * y.shape[2])
        assert ab[f"style/{name}"] == pytest.approx(float(np.mean((gx - gy) ** 2)), rel=1e-3)
    expected_content = float(losses.content_loss(fa[-1], encoder(c)[-1]))
    assert ab["content"] == pytest.approx(expected_content, rel=1e-6)


def test_metric_batch_mean_and_features_path(encoder):
    out, content, style = _images(2, 32, 32, 6), _images(2, 32, 32, 7), _images(1, 40, 40, 8)
    both = metrics.perceptual_loss(encoder, out, content, style)
    singles = [
        metrics.perceptual_loss(encoder, out[i : i + 1], content[i : i + 1], style) for i in (0, 1)
    ]
    for key in metrics.METRIC_NAMES:
        assert both[key] == pytest.approx(np.mean([s[key] for s in singles]), rel=1e-4)
    cached = metrics.perceptual_loss_from_features(
        encoder, out, metrics.encode(encoder, content), metrics.encode(encoder, style)
    )
    assert cached == pytest.approx(both)
    assert all(isinstance(v, float) for v in both.values())
    with pytest.raises(ValueError, match="differ"):
        metrics.perceptual_loss(encoder, out, _images(2, 40, 32), style)


# ----------------------------------------------------------------------------
# Library pieces.
# ----------------------------------------------------------------------------


def test_select_pairs():
    assert eval_lib.select_pairs(2, 3, 0, 0) == [(i, j) for i in range(2) for j in range(3)]
    sampled = eval_lib.select_pairs(10, 20, 7, seed=1)
    assert len(sampled) == len(set(sampled)) == 7
    assert sampled == eval_lib.select_pairs(10, 20, 7, seed=1)
    assert sampled != eval_lib.select_pairs(10, 20, 7, seed=2)
    assert len(eval_lib.select_pairs(2, 2, 9, seed=0)) == 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(methods=("efanet", "cyclegan")), "unknown method"),
        (dict(methods=("adain", "adain")), "unique"),
        (dict(methods=("x=",)), "name=checkpoint_dir"),
        (dict(size=8), "size"),
        (dict(gatys_iterations=0), "gatys_iterations"),
        (dict(gatys_optimizer="sgd"), "gatys_optimizer"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        eval_config.EvalConfig(content_dir="c", style_dir="s", output_dir="o", **kwargs)


def _save_training_checkpoint(model, model_dir, config):
    """Writes a checkpoint laid out like train_lib's (model, optimizer, step)."""
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config, f)
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)
    step = tf.Variable(3, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=1).save(checkpoint_number=3)


def _perturb(model):
    """Moves every trainable weight away from its (seeded) initial value."""
    for v in model.trainable_variables:
        v.assign(v + tf.random.normal(v.shape, stddev=0.01, seed=len(v.path)))


def test_loader_restores_an_adain_training_checkpoint(tmp_path):
    keras.utils.set_random_seed(5)
    model = adain_lib.AdaINNet(vgg_weights=None, upsample_filters=(16, 8, 8))
    model.build()
    _perturb(model)
    model_dir = os.path.join(tmp_path, "adain")
    config = {"model": "adain", "upsample_filters": [16, 8, 8], "vgg_weights": None}
    _save_training_checkpoint(model, model_dir, config)
    # Another seed: the random VGG the loader builds must be overwritten too.
    keras.utils.set_random_seed(6)
    restored = loader.load(model_dir, what="adain", expect=adain_lib.AdaINNet)
    for a, b in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    content, style = _images(1, 32, 40, 1), _images(1, 32, 32, 2)
    np.testing.assert_allclose(
        restored.stylize(content, style), model.stylize(content, style), atol=1e-6
    )
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(dict(config, upsample_filters=[32, 8, 8]), f)
    with pytest.raises((ValueError, AssertionError)):
        loader.load(model_dir, what="adain", expect=adain_lib.AdaINNet)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump({"model": "efanet"}, f)
    with pytest.raises(ValueError, match="not adain"):
        loader.load(model_dir, what="adain", expect=adain_lib.AdaINNet)
    with pytest.raises(FileNotFoundError, match="missing does not exist"):
        loader.load(os.path.join(tmp_path, "missing"), what="adain", expect=adain_lib.AdaINNet)


# ----------------------------------------------------------------------------
# End to end.
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_efanet_dir(tmp_path_factory):
    keras.utils.set_random_seed(6)
    model = ExchangeStyleTransfer(vgg_weights=None, **_SMALL_EFANET)
    model.build()
    _perturb(model)
    model_dir = str(tmp_path_factory.mktemp("efanet_run"))
    config = {"model": "efanet", "vgg_weights": None, **_SMALL_EFANET}
    _save_training_checkpoint(model, model_dir, config)
    return model_dir, model


def test_eval_end_to_end(tmp_path, small_efanet_dir):
    efanet_dir, _ = small_efanet_dir
    content_dir = _write_images(os.path.join(tmp_path, "content"), 2, (40, 52), seed=1)
    style_dir = _write_images(os.path.join(tmp_path, "style"), 2, (48, 36), seed=2, ext=".jpg")
    output_dir = os.path.join(tmp_path, "out")
    cfg = eval_config.EvalConfig(
        content_dir=content_dir,
        style_dir=style_dir,
        output_dir=output_dir,
        methods=(
            "content",
            "efanet",
            "adain",
            "gatys",
            "wct",
            "ablation=" + efanet_dir,
            "broken=" + os.path.join(tmp_path, "no_such_run"),
        ),
        efanet_checkpoint=efanet_dir,
        vgg_weights=None,
        size=32,
        pairs=3,
        gatys_iterations=3,
        timing_sizes=(32, 48),
        timing_runs=2,
        gatys_timing_iterations=2,
        grid_rows=2,
        random_init=True,
    )
    results = eval_lib.run(cfg)

    with open(os.path.join(output_dir, eval_lib.RESULTS_FILE)) as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(results))
    assert {
        "config",
        "device",
        "tensorflow_version",
        "num_pairs",
        "methods",
        "timings",
        "table",
        "pairs",
        "comparison_columns",
    } <= set(saved)
    assert saved["num_pairs"] == 3 and len(saved["pairs"]) == 3
    assert saved["tensorflow_version"] == tf.__version__
    ok = ("content", "efanet", "adain", "gatys", "wct", "ablation")
    for name in ok:
        info = saved["methods"][name]
        assert info["status"] == "ok", info
        assert info["num_pairs"] == 3
        for key in metrics.METRIC_NAMES:
            # The summary is the mean (and spread) of the per-pair values it saves.
            per_pair = [pair[name][key] for pair in saved["pairs"]]
            assert info["metrics"][key]["mean"] == pytest.approx(np.mean(per_pair), rel=1e-6)
            assert info["metrics"][key]["std"] == pytest.approx(
                np.std(per_pair), rel=1e-6, abs=1e-12
            )
        for size in ("32", "48") if name != "content" else ():
            assert saved["timings"][name][size]["seconds"] > 0.0
    # Two rows of one checkpoint ("efanet" and "ablation=<its dir>") score alike, pair by pair.
    for pair in saved["pairs"]:
        for key in metrics.METRIC_NAMES:
            assert pair["ablation"][key] == pytest.approx(pair["efanet"][key], rel=1e-5)
    assert saved["methods"]["efanet"]["metrics"]["total"]["mean"] != pytest.approx(
        saved["methods"]["adain"]["metrics"]["total"]["mean"], rel=1e-3
    )
    # The content row: the content unchanged, so no content loss; the floor of the style term.
    assert saved["methods"]["content"]["metrics"]["content"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert saved["methods"]["content"]["metrics"]["style"]["mean"] > 0.0
    assert "content" not in saved["timings"] and "| content | 0.0000" in saved["table"]
    assert saved["pairs"][0]["content_file"].startswith(content_dir)
    assert saved["methods"]["adain"]["source"] == "random init"
    assert saved["methods"]["efanet"]["source"] == efanet_dir
    assert saved["timings"]["gatys"]["32"]["extrapolated"] is True
    assert saved["methods"]["broken"]["status"] == "failed"
    assert "no_such_run" in saved["methods"]["broken"]["error"]
    assert "broken" not in saved["timings"]

    table = saved["table"]
    assert "| Method | Content | Style | Overall |" in table
    assert "| broken | FAILED" in table
    assert all(f"| {name} | " in table for name in ok)
    assert "32x32" in table and "48x48" in table

    grid = np.asarray(Image.open(os.path.join(output_dir, eval_lib.GRID_FILE)))
    columns = 2 + len(cfg.methods)
    assert grid.shape == (2 * (32 + 4) + 4, columns * (32 + 4) + 4, 3)


def test_efanet_without_a_model_source_is_the_pretrained_release(
    tiny_release, tmp_path, monkeypatch
):
    cfg = eval_config.EvalConfig(
        content_dir="c",
        style_dir="s",
        output_dir=str(tmp_path),
        methods=("efanet",),
        vgg_weights=None,
    )
    monkeypatch.setenv(release.ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(release.NoPretrainedModel, match="--efanet_checkpoint"):
        eval_methods._Models(cfg).efanet()
    monkeypatch.setenv(release.ENV_VAR, tiny_release["path"])
    stylize_fn, source = eval_methods._Models(cfg).efanet()
    assert source == f"pretrained release {tiny_release['path']}"
    content = _images(1, 32, 40, seed=4)
    want = release.load(tiny_release["path"]).stylize(content, content[:, ::-1])
    np.testing.assert_allclose(
        stylize_fn(content, content[:, ::-1]).numpy(), want.numpy(), atol=1e-5
    )


def test_adain_without_a_checkpoint_uses_the_adain_release(tmp_path, monkeypatch):
    keras.utils.set_random_seed(2)
    model = adain_lib.AdaINNet(vgg_weights=None, upsample_filters=(16, 8, 8))
    model.build()
    path = str(tmp_path / "adain")
    release.save(model, path, int8_min_params=10**12)
    cfg = eval_config.EvalConfig("c", "s", str(tmp_path), methods=("adain",), vgg_weights=None)
    monkeypatch.setenv(release.ENV_VARS["adain"], str(tmp_path / "missing"))
    with pytest.raises(release.NoPretrainedModel, match="--adain_checkpoint"):
        eval_methods._Models(cfg).adain()
    monkeypatch.setenv(release.ENV_VARS["adain"], path)
    loaded, source = eval_methods._Models(cfg).adain()
    assert source == f"pretrained release {path}"
    content = _images(1, 32, 40, seed=4)
    np.testing.assert_allclose(
        loaded.stylize(content, content[:, ::-1]).numpy(),
        model.stylize(content, content[:, ::-1]).numpy(),
        atol=2e-3,
    )


def test_tables_select_table_1_or_table_2(tmp_path):
    content_dir = _write_images(os.path.join(tmp_path, "content"), 2, (40, 32), seed=1)
    style_dir = _write_images(os.path.join(tmp_path, "style"), 2, (36, 48), seed=2)
    base = dict(
        content_dir=content_dir,
        style_dir=style_dir,
        methods=("content", "efanet"),
        vgg_weights=None,
        size=32,
        timing_sizes=(32,),
        timing_runs=1,
        random_init=True,
    )
    only1 = eval_lib.run(
        eval_config.EvalConfig(output_dir=str(tmp_path / "1"), tables=(1,), **base)
    )
    assert only1["num_pairs"] == 4 and only1["timings"] == {}
    assert "Table 1." in only1["table"] and "Table 2." not in only1["table"]
    only2 = eval_lib.run(
        eval_config.EvalConfig(output_dir=str(tmp_path / "2"), tables=(2,), **base)
    )
    assert only2["num_pairs"] == 0 and only2["pairs"] == []
    assert set(only2["timings"]["efanet"]) == {"32"}
    assert only2["table"].startswith("Table 2.")
    with pytest.raises(ValueError, match="tables must be 1, 2 or both"):
        eval_config.EvalConfig(output_dir="o", tables=(3,), **base)


def test_table_2_times_the_methods_in_interleaved_rounds(tmp_path):
    """Each round runs every method once, so a drifting load hits them alike."""
    image = _write_images(os.path.join(tmp_path, "img"), 1, (32, 32), seed=3)
    path = image_io.list_images(image)[0]
    calls = []

    def feed_forward(name):
        def stylize(content, style):
            calls.append(name)
            return content

        return stylize

    def optimise(content, style, iterations=None):
        calls.append(f"opt{iterations or 4}")
        return iterations or 4

    methods = [
        eval_methods.Method("a", stylize=feed_forward("a")),
        eval_methods.Method("b", stylize=feed_forward("b")),
        eval_methods.Method("g", stylize=feed_forward("g"), time_fn=optimise),
    ]
    cfg = eval_config.EvalConfig(
        "c", "s", "o", methods=("content",), timing_sizes=(32,), timing_runs=3, gatys_iterations=20
    )
    timings = eval_lib.run_timings(cfg, methods, path, path)
    assert calls == ["a", "b", "opt1"] + ["a", "b", "opt4"] * 3
    for name in ("a", "b"):
        cell = timings[name]["32"]
        assert len(cell["runs"]) == 3 and cell["min_s"] <= cell["seconds"] <= cell["max_s"]
    # 4 iterations timed per round, extrapolated to the 20 of the comparison.
    g = timings["g"]["32"]
    assert g["extrapolated"] and g["seconds"] == pytest.approx(5 * np.median(g["runs"]))
    assert "~" in eval_lib._time_cell(g) and "(" in eval_lib._time_cell(timings["a"]["32"])


def _run_cli(*args, **env_vars):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **env_vars)
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "eval.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_reports_input_errors_in_one_line(tmp_path):
    empty = os.path.join(tmp_path, "empty")
    os.makedirs(empty)
    styles = _write_images(os.path.join(tmp_path, "style"), 1, (32, 32), seed=3)
    out = os.path.join(tmp_path, "out")
    result = _run_cli(
        f"--content_dir={empty}",
        f"--style_dir={styles}",
        f"--output_dir={out}",
        "--vgg_weights=none",
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("eval.py: error:")]
    assert len(errors) == 1 and "No image files" in errors[0] and empty in errors[0]

    corrupt = os.path.join(tmp_path, "corrupt")
    os.makedirs(corrupt)
    for name in ("broken.jpg", "also_broken.png"):
        with open(os.path.join(corrupt, name), "wb") as f:
            f.write(b"not an image")
    _write_images(corrupt, 1, (32, 32), seed=4)
    result = _run_cli(
        f"--content_dir={corrupt}",
        f"--style_dir={styles}",
        f"--output_dir={out}",
        "--vgg_weights=none",
        "--noskip_unreadable",
    )
    assert result.returncode == 1
    # Every unreadable file in the one error line, not only the first.
    errors = [line for line in result.stderr.splitlines() if line.startswith("eval.py: error:")]
    assert len(errors) == 1 and "Cannot read 2 of the 3 images" in errors[0], result.stderr
    assert "broken.jpg" in errors[0] and "also_broken.png" in errors[0]
    assert not os.path.exists(os.path.join(out, eval_lib.RESULTS_FILE))


def test_unreadable_images_are_skipped_and_named_in_plain_words(tmp_path):
    folder = _write_images(os.path.join(tmp_path, "content"), 2, (32, 40), seed=5)
    with open(os.path.join(folder, "notes.jpg"), "w") as f:
        f.write("not a picture")
    open(os.path.join(folder, "empty.png"), "wb").close()
    paths, images, skipped = eval_lib._load_directory(folder, 16, "content")
    assert len(paths) == len(images) == 2
    assert sorted(os.path.basename(r.split(" ")[0]) for r in skipped) == ["empty.png", "notes.jpg"]
    assert all("(content)" in r for r in skipped)
    assert any("is not an image file" in r for r in skipped)
    assert any("is empty" in r for r in skipped)
    with pytest.raises(image_io.ImageReadError, match="Cannot read 2 of the 4 images"):
        eval_lib._load_directory(folder, 16, "content", skip_unreadable=False)


def test_saved_model_method_uses_the_serving_signature(tmp_path, encoder):
    # A stand-in with export_savedmodel.py's serving_default signature.
    module = tf.Module()
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)

    @tf.function(input_signature=[spec, spec, tf.TensorSpec([], tf.float32)])
    def serve(content, style, alpha):
        mean = tf.reduce_mean(style, axis=[1, 2], keepdims=True)
        return {"stylized": (1.0 - alpha) * content + alpha * (0.5 * content + 0.5 * mean)}

    module.serve = serve
    path = os.path.join(tmp_path, "saved_model")
    tf.saved_model.save(module, path, signatures={"serving_default": serve.get_concrete_function()})
    cfg = eval_config.EvalConfig("c", "s", "o", methods=("efanet",), efanet_saved_model=path)
    (method,) = eval_methods.build_methods(cfg, encoder)
    assert method.status == "ok" and method.source == path
    content, style = _images(1, 32, 32, 1), _images(1, 40, 40, 2)
    expected = 0.5 * content + 0.5 * tf.reduce_mean(style, axis=[1, 2], keepdims=True)
    np.testing.assert_allclose(method.stylize(content, style), expected, atol=1e-6)
    cfg = eval_config.EvalConfig(
        "c", "s", "o", methods=("efanet",), efanet_saved_model=os.path.join(tmp_path, "nothing")
    )
    (method,) = eval_methods.build_methods(cfg, encoder)
    assert method.status == "failed" and "nothing does not exist" in method.error


def test_cli_exits_nonzero_when_every_method_failed_and_says_what_wct_needs(tmp_path):
    contents = _write_images(os.path.join(tmp_path, "content"), 1, (32, 32), seed=5)
    styles = _write_images(os.path.join(tmp_path, "style"), 1, (32, 32), seed=6)
    common = (
        f"--content_dir={contents}",
        f"--style_dir={styles}",
        f"--output_dir={tmp_path / 'out'}",
        "--vgg_weights=none",
        "--size=32",
        "--timing_sizes=",
    )
    # No AdaIN release where the variable points (the source tree ships one).
    missing = {release.ENV_VARS["adain"]: str(tmp_path / "no_adain")}
    result = _run_cli(*common, "--methods=wct", **missing)
    assert result.returncode == 1, result.stderr
    assert "wct uses AdaIN's decoder: No release at" in result.stderr
    assert "or pass --adain_checkpoint" in result.stderr
    assert "every requested method failed" in result.stderr
    # One method that runs: exit 0, the failed one still listed.
    result = _run_cli(*common, "--methods=wct,gatys", "--gatys_iterations=1", **missing)
    assert result.returncode == 0, result.stderr
    assert "wct failed:" in result.stderr and "every requested" not in result.stderr
