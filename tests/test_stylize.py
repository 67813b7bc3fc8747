"""Tests for exchange_st.inference.stylize (the exchange-st-stylize command) and exchange_st.inference.video."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import SMALL_EFANET, small_efanet
from PIL import Image

from exchange_st.baselines.adain import AdaINNet
from exchange_st.data import image_io
from exchange_st.saving import serialization
from exchange_st.inference import stylize_job, video
from exchange_st.inference import stylizer as stylizer_lib
from exchange_st.saving import export, release

SMALL = SMALL_EFANET
TOL = 1e-4


def _write_rgb(path, h, w, seed):
    array = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stylize")
    model = small_efanet(3, spread=True)
    saved = str(tmp / "saved_model")
    export.export_saved_model(model, saved)
    files = {
        "c0": _write_rgb(str(tmp / "content" / "c0.png"), 40, 52, 0),
        "c1": _write_rgb(str(tmp / "content" / "sub" / "c1.jpg"), 36, 44, 1),
        "style": _write_rgb(str(tmp / "style.png"), 48, 40, 2),
        "style2": _write_rgb(str(tmp / "style2.png"), 33, 50, 3),
    }
    with open(tmp / "content" / "broken.png", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n this is not a PNG")
    files["broken"] = str(tmp / "content" / "broken.png")
    left = np.zeros((20, 30), np.uint8)
    left[:, :15] = 255
    Image.fromarray(left).save(tmp / "left.png")
    Image.fromarray(255 - left).save(tmp / "right.png")
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp / "ones.png")
    return dict(
        tmp=tmp,
        model=model,
        saved=saved,
        files=files,
        stylizer=stylizer_lib.Stylizer.from_saved_model(saved),
    )


def _config(setup, out, **kwargs):
    kwargs.setdefault("content", setup["files"]["c0"])
    kwargs.setdefault("styles", [setup["files"]["style"]])
    kwargs.setdefault("saved_model", setup["saved"])
    return stylize_job.StylizeConfig(output_dir=str(out), **kwargs)


def test_command_on_directory_with_a_corrupt_file(setup, tmp_path):
    files = setup["files"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "exchange_st.inference.stylize",
            f"--saved_model={setup['saved']}",
            f"--content={os.path.dirname(files['c0'])}",
            f"--style={files['style']}",
            f"--output_dir={tmp_path}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    # The other files are done, keeping the sub-directory layout.
    assert os.path.isfile(tmp_path / "c0_style.png")
    assert os.path.isfile(tmp_path / "sub" / "c1_style.png")
    assert Image.open(tmp_path / "sub" / "c1_style.png").size == (44, 36)
    errors = [line for line in proc.stderr.splitlines() if "broken.png" in line]
    assert any("(content) is not an image file" in line for line in errors), proc.stderr[-3000:]
    # The line starts with what it is, not with absl's prefix (level, time, thread, file:line).
    assert any(line.startswith("error: ") for line in errors), errors
    assert any("1 input(s) failed" in line for line in errors)
    assert not os.path.exists(tmp_path / "broken_style.png")


def test_single_image_matches_the_saved_model(setup, tmp_path):
    report = stylize_job.stylize_all(_config(setup, tmp_path, alphas=[0.6]), setup["stylizer"])
    assert not report.failures
    assert report.outputs == [str(tmp_path / "c0_style_alpha0.60.png")]
    content = image_io.load_image(setup["files"]["c0"])
    style = image_io.load_image(setup["files"]["style"])
    want = setup["model"].stylize(content[None], style[None], 0.6)[0].numpy()
    got = image_io.load_image(report.outputs[0])
    # PNG stores 8 bits.
    np.testing.assert_allclose(got, want, atol=0.5 / 255 + 1e-6)


def test_style_size_bounds_the_style_alone(setup, tmp_path):
    """--style_size resizes the style and leaves the content at --max_size; unset, the
    style follows --max_size as before the option."""
    content = image_io.load_image(setup["files"]["c0"])  # 40 x 52
    style = image_io.load_image(setup["files"]["style"])  # 48 x 40
    for style_size, max_size, want_style in [(24, 64, (24, 20)), (None, 32, (32, 27))]:
        config = _config(setup, tmp_path / str(style_size), max_size=max_size)
        config.style_size = style_size
        job = stylize_job._Job(config, setup["stylizer"])
        assert job.styles[setup["files"]["style"]].shape[:2] == want_style
        report = stylize_job.stylize_all(config, setup["stylizer"])
        small = image_io.resize_array(style, want_style)
        want = (
            setup["model"]
            .stylize(
                image_io.load_image(setup["files"]["c0"], max_size=max_size)[None], small[None]
            )[0]
            .numpy()
        )
        got = image_io.load_image(report.outputs[0])
        assert got.shape[:2] == (content.shape[:2] if max_size >= 52 else (25, 32))
        np.testing.assert_allclose(got, want, atol=2 / 255)


def test_alpha_list_writes_one_image_per_alpha_and_a_strip(setup, tmp_path, monkeypatch):
    alphas = [0.0, 0.5, 1.0]
    config = _config(setup, tmp_path, alphas=alphas, max_size=32)
    bars = []

    class Bar(keras.utils.Progbar):
        def __init__(self, target, **kwargs):
            super().__init__(target, **kwargs)
            bars.append(self)

    monkeypatch.setattr(keras.utils, "Progbar", Bar)
    report = stylize_job.stylize_all(config, setup["stylizer"])
    # The progress counts what is made: one content x one style x three alphas.
    assert [(b.target, b._seen_so_far, b.unit_name) for b in bars] == [(3, 3, "stylized image")]
    assert not report.failures
    names = sorted(os.path.basename(p) for p in report.outputs)
    assert names == [
        "c0_style_alpha0.00.png",
        "c0_style_alpha0.50.png",
        "c0_style_alpha1.00.png",
        "c0_style_alphas.png",
    ]
    images = {a: image_io.load_image(tmp_path / f"c0_style_alpha{a:.2f}.png") for a in alphas}
    # --max_size bounds the content's longer side (52 -> 32); the style keeps its 48 px,
    # under --style_size's 768.
    content = image_io.load_image(setup["files"]["c0"], max_size=32)
    style = image_io.load_image(setup["files"]["style"])
    assert content.shape == images[0.0].shape == (25, 32, 3)
    for alpha, image in images.items():
        want = setup["stylizer"].stylize(content, style, alpha)
        np.testing.assert_allclose(image, want, atol=0.5 / 255 + 1e-6)
    assert np.abs(images[0.0] - images[1.0]).max() > 2 / 255
    strip = image_io.load_image(tmp_path / "c0_style_alphas.png")
    # content, three alphas and the style, side by side at the content height.
    assert strip.shape[0] == 25 + 2 * 4 and strip.shape[1] > 4 * 32


def test_masks_give_spatial_control(setup, tmp_path):
    files = setup["files"]
    tmp = setup["tmp"]
    config = _config(
        setup,
        tmp_path,
        styles=[files["style"], files["style2"]],
        masks=[str(tmp / "left.png"), str(tmp / "right.png")],
    )
    report = stylize_job.stylize_all(config, setup["stylizer"])
    assert not report.failures
    assert [os.path.basename(p) for p in report.outputs] == ["c0_regions_style_style2.png"]
    content = image_io.load_image(files["c0"])
    styles = [image_io.load_image(files[k])[None] for k in ("style", "style2")]
    masks = [
        stylizer_lib.mask_for(stylizer_lib.load_mask(tmp / name), content.shape[:2])
        for name in ("left.png", "right.png")
    ]
    assert masks[0][:, :20].min() == 1.0 and masks[0][:, 32:].max() == 0.0
    want = setup["model"].stylize_regions(content[None], styles, [m[None] for m in masks])
    got = setup["stylizer"].stylize_regions(content, [s[0] for s in styles], masks)
    np.testing.assert_allclose(got, want[0].numpy(), atol=TOL)
    written = image_io.load_image(report.outputs[0])
    np.testing.assert_allclose(written, got, atol=0.5 / 255 + 1e-6)
    # One style under a full mask is plain stylization.
    full = stylizer_lib.mask_for(stylizer_lib.load_mask(tmp / "ones.png"), content.shape[:2])
    np.testing.assert_allclose(
        setup["stylizer"].stylize_regions(content, [styles[0][0]], [full]),
        setup["stylizer"].stylize(content, styles[0][0]),
        atol=TOL,
    )


def test_random_init_source_uses_the_same_functions(setup, tmp_path):
    config = _config(setup, tmp_path, saved_model=None, random_init=True, model_config=dict(SMALL))
    stylizer = stylizer_lib.load_stylizer(random_init=True, model_config=dict(SMALL))
    assert isinstance(stylizer.module, export.StylizeModule)
    report = stylize_job.stylize_all(config, stylizer)
    assert not report.failures
    assert image_io.load_image(report.outputs[0]).shape == (40, 52, 3)


def test_preserve_color_keeps_content_chroma(setup):
    rng = np.random.default_rng(0)
    content = rng.uniform(0.2, 0.8, (16, 20, 3)).astype(np.float32)
    stylized = rng.uniform(0.3, 0.7, (16, 20, 3)).astype(np.float32)
    out = stylizer_lib.preserve_colors(stylized, content)
    yuv_out, yuv_sty, yuv_con = (tf.image.rgb_to_yuv(x).numpy() for x in (out, stylized, content))
    inside = np.all((out > 0.0) & (out < 1.0), axis=-1)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(yuv_out[inside][:, 0], yuv_sty[inside][:, 0], atol=1e-5)
    np.testing.assert_allclose(yuv_out[inside][:, 1:], yuv_con[inside][:, 1:], atol=1e-5)


def test_unreadable_style_or_mask_fails_cleanly(setup, tmp_path):
    missing = str(tmp_path / "nope.png")
    report = stylize_job.stylize_all(_config(setup, tmp_path, styles=[missing]), setup["stylizer"])
    assert [p for p, _ in report.failures] == [missing] and not report.outputs
    config = _config(
        setup, tmp_path, styles=[setup["files"]["style"]], masks=[setup["files"]["broken"]]
    )
    report = stylize_job.stylize_all(config, setup["stylizer"])
    assert [p for p, _ in report.failures] == [setup["files"]["broken"]] and not report.outputs


def test_noskip_unreadable_stylizes_nothing_when_an_input_cannot_be_read(setup, tmp_path):
    content_dir = os.path.dirname(setup["files"]["c0"])  # holds broken.png
    skipping = stylize_job.stylize_all(
        _config(setup, tmp_path / "a", content=content_dir), setup["stylizer"]
    )
    assert [p for p, _ in skipping.failures] == [setup["files"]["broken"]]
    assert len(skipping.outputs) == 2
    config = _config(setup, tmp_path / "b", content=content_dir, skip_unreadable=False)
    refusing = stylize_job.stylize_all(config, setup["stylizer"])
    assert [p for p, _ in refusing.failures] == [setup["files"]["broken"]]
    assert not refusing.outputs and not os.path.exists(tmp_path / "b")
    missing = str(tmp_path / "nope.png")
    config = _config(
        setup, tmp_path / "c", styles=[setup["files"]["style"], missing], skip_unreadable=False
    )
    assert not stylize_job.stylize_all(config, setup["stylizer"]).outputs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(checkpoint_dir="run"), "at most one model source"),
        (dict(random_init=True), "at most one model source"),
        (dict(alphas=[1.5]), r"alpha must lie in \[0, 1\]"),
        (dict(masks=["a.png", "b.png"]), "one mask per style"),
        (dict(content=None), "Nothing to stylize"),
        (dict(style_size=8), "style_size must be >= 16"),
    ],
)
def test_config_validation(kwargs, message):
    base = dict(content="c.png", styles=["s.png"], output_dir="out", saved_model="sm")
    with pytest.raises(ValueError, match=message):
        stylize_job.StylizeConfig(**{**base, **kwargs})


def test_command_without_a_model_flag_uses_the_pretrained_release(setup, tiny_release, tmp_path):
    files = setup["files"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", EXCHANGE_ST_PRETRAINED=tiny_release["path"])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "exchange_st.inference.stylize",
            f"--content={files['c0']}",
            f"--style={files['style']}",
            f"--output_dir={tmp_path}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = image_io.load_image(tmp_path / "c0_style.png")
    content, style = (image_io.load_image(files[k])[None] for k in ("c0", "style"))
    want = release.load(tiny_release["path"]).stylize(content, style)[0].numpy()
    assert want.std() > 0.05
    # The PNG holds 8-bit levels.
    np.testing.assert_allclose(got, want, atol=0.51 / 255 + TOL)


def test_model_adain_without_a_source_uses_the_adain_release(setup, tmp_path, monkeypatch):
    """`--model=adain` alone: pretrained/adain (here a tiny one through its variable)."""
    keras.utils.set_random_seed(3)
    adain = AdaINNet(vgg_weights=None, upsample_filters=(16, 8, 8))
    adain.build()
    path = str(tmp_path / "adain")
    release.save(adain, path, int8_min_params=10**12)
    monkeypatch.setenv(release.ENV_VARS["adain"], path)
    config = _config(setup, tmp_path / "out", saved_model=None, model="adain")
    stylizer = stylize_job.load_stylizer(config)
    assert isinstance(stylizer.model, AdaINNet)
    report = stylize_job.stylize_all(config, stylizer)
    content = image_io.load_image(setup["files"]["c0"])[None]
    style = image_io.load_image(setup["files"]["style"])[None]
    want = np.clip(adain.stylize(content, style)[0].numpy(), 0, 1)
    np.testing.assert_allclose(image_io.load_image(report.outputs[0]), want, atol=2e-3 + 0.5 / 255)
    # The EFANet release is still the default, and the AdaIN one is not found without it.
    monkeypatch.setenv(release.ENV_VARS["adain"], str(tmp_path / "none"))
    with pytest.raises(release.NoPretrainedModel, match="EXCHANGE_ST_PRETRAINED_ADAIN"):
        stylize_job.load_stylizer(config)


def test_no_release_says_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.setenv(release.ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(release.NoPretrainedModel, match="No release at .*--saved_model"):
        stylizer_lib.load_stylizer()


def _frames(n, h=36, w=46):
    rng = np.random.default_rng(1)
    return [(rng.random((h, w, 3)) * 255).astype(np.uint8) for _ in range(n)]


def test_video_from_frame_directory_to_png_sequence(setup, tmp_path):
    frames_dir = tmp_path / "clip"
    for i, frame in enumerate(_frames(3)):
        os.makedirs(frames_dir, exist_ok=True)
        Image.fromarray(frame).save(frames_dir / f"f{i:03d}.png")
    config = _config(
        setup, tmp_path / "out", content=None, video=str(frames_dir), video_format="frames"
    )
    report = stylize_job.stylize_all(config, setup["stylizer"])
    assert not report.failures and report.frames_per_second > 0
    out_dir = str(tmp_path / "out" / "clip_style_frames")
    assert report.outputs == [out_dir]
    assert video.count_frames(out_dir) == 3
    first = image_io.load_image(os.path.join(out_dir, "frame_000000.png"))
    want = setup["stylizer"].stylize(
        image_io.load_image(frames_dir / "f000.png"), image_io.load_image(setup["files"]["style"])
    )
    np.testing.assert_allclose(first, want, atol=0.5 / 255 + 1e-6)


def test_video_files_without_ffmpeg_say_what_to_install(setup, tmp_path, monkeypatch):
    monkeypatch.setattr(video, "_imageio", lambda: None)
    assert not video.has_ffmpeg()
    with pytest.raises(video.VideoUnavailableError, match="imageio-ffmpeg"):
        video.VideoWriter(str(tmp_path / "x"), video_format="mp4")
    path = str(tmp_path / "clip.mp4")
    open(path, "wb").close()
    report = stylize_job.stylize_all(
        _config(setup, tmp_path / "out", content=None, video=path), setup["stylizer"]
    )
    assert report.failures and "imageio" in report.failures[0][1]


def _smooth_frames(n, h, w):
    """Moving colour gradients: what H.264 compresses like a real clip (noise it does not)."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    return [
        np.stack([0.5 + 0.4 * np.sin(6 * x + t), 0.3 + 0.5 * y, 0.5 + 0.4 * np.cos(5 * y - t)], -1)
        for t in np.linspace(0.0, 1.0, n)
    ]


def test_video_file_frames_are_each_frame_stylized_alone(setup, tmp_path):
    """mp4 in, mp4 out (imageio-ffmpeg, in the test extra): every output frame is the
    stylization of that decoded input frame, up to H.264's loss."""
    assert video.has_ffmpeg(), "the test extra installs imageio-ffmpeg"
    path = str(tmp_path / "clip.mp4")
    with video.VideoWriter(str(tmp_path / "clip"), fps=8, video_format="mp4") as writer:
        for frame in _smooth_frames(4, 35, 47):  # odd sides: cropped to even
            writer.write(frame)
    assert writer.path == path and video.count_frames(path) == 4
    config = _config(setup, tmp_path / "out", content=None, video=path, max_frames=3)
    report = stylize_job.stylize_all(config, setup["stylizer"])
    assert not report.failures
    out = str(tmp_path / "out" / "clip_style.mp4")
    assert report.outputs == [out]
    with video.VideoReader(path) as reader:
        inputs = list(reader)[:3]
    with video.VideoReader(out) as reader:
        frames = list(reader)
        assert reader.fps == pytest.approx(8.0)
    assert len(frames) == 3 and frames[0].shape == (34, 46, 3)
    style = image_io.load_image(setup["files"]["style"])
    wants = [np.asarray(setup["stylizer"].stylize(frame, style)) for frame in inputs]
    # Each output frame is its own input's stylization, up to H.264's loss (~5/255 on
    # this random network's high-frequency output), and far from the other frames'.
    errors = np.array([[np.abs(got - want).mean() for want in wants] for got in frames])
    assert np.all(np.diag(errors) < 8 / 255), errors
    assert np.all(np.diag(errors) < 0.7 * (errors + np.eye(3)).min(axis=1)), errors


# ----------------------------------------------------------------------------
# Full resolution, interpolation, precision, any trained model, small inputs.
# ----------------------------------------------------------------------------


def test_style_weights_interpolate_the_styles(setup, tmp_path):
    files = setup["files"]
    config = _config(
        setup, tmp_path, styles=[files["style"], files["style2"]], style_weights=[7.0, 3.0]
    )
    report = stylize_job.stylize_all(config, setup["stylizer"])
    assert not report.failures
    assert [os.path.basename(p) for p in report.outputs] == ["c0_mix_style_style2.png"]
    content = image_io.load_image(files["c0"])
    styles = [image_io.load_image(files[k]) for k in ("style", "style2")]
    model = setup["model"]
    r = [model.fused_features(content[None], s[None])[0] for s in styles]
    want = model.render_content(0.7 * r[0] + 0.3 * r[1], content[None])[0].numpy()
    np.testing.assert_allclose(image_io.load_image(report.outputs[0]), want, atol=0.5 / 255 + 1e-5)
    for style in styles:
        assert np.abs(want - setup["stylizer"].stylize(content, style)).max() > 2 / 255
    with pytest.raises(ValueError, match="one style weight per style"):
        _config(setup, tmp_path, styles=[files["style"]], style_weights=[0.5, 0.5])


def test_default_memory_budget_is_half_the_available_memory(setup):
    """psutil's figure, so the budget exists on every OS (not only where /proc/meminfo does)."""
    import psutil

    available = stylizer_lib.available_memory()
    assert 0 < available <= psutil.virtual_memory().total
    budget = stylizer_lib.Stylizer.from_saved_model(setup["saved"]).memory_budget
    assert budget == pytest.approx(0.5 * available, rel=0.1)


def test_full_resolution_runs_tiled_above_the_memory_budget(setup, tmp_path, caplog):
    model = setup["model"]
    content = image_io.load_image(setup["files"]["c0"])
    style = image_io.load_image(setup["files"]["style"])
    plain = stylizer_lib.Stylizer.from_model(model).stylize(content, style, 0.5)
    caplog.set_level("INFO", logger="absl")
    for kwargs in (dict(memory_budget=1.0), dict(tile_size=24)):
        tiled = stylizer_lib.Stylizer.from_model(model, **kwargs)
        np.testing.assert_allclose(tiled.stylize(content, style, 0.5), plain, atol=2e-4)
    messages = [r.getMessage() for r in caplog.records if "stylize_tiled" in r.getMessage()]
    assert len(messages) == 2 and "over the memory budget" in messages[0], messages
    assert "tiles of 24 px (--tile_size" in messages[1]
    # The command at full resolution (max_size None) goes the same way.
    report = stylize_job.stylize_all(
        _config(setup, tmp_path, saved_model=None, random_init=True, max_size=None),
        stylizer_lib.Stylizer.from_model(model, tile_size=24),
    )
    assert not report.failures
    got = image_io.load_image(report.outputs[0])
    want = stylizer_lib.Stylizer.from_model(model).stylize(content, style)
    np.testing.assert_allclose(got, want, atol=0.5 / 255 + 2e-4)
    # A SavedModel cannot tile: one sentence, not an out-of-memory crash.
    saved = stylizer_lib.Stylizer.from_saved_model(setup["saved"], memory_budget=1.0)
    report = stylize_job.stylize_all(_config(setup, tmp_path / "sm", max_size=None), saved)
    assert "needs tiles" in report.failures[0][1] and "--checkpoint_dir" in report.failures[0][1]


def _run_dir(model, path):

    serialization.save_weights(model, os.path.join(path, serialization.WEIGHTS_FILE))
    return str(path)


def test_bfloat16_precision_and_adain_checkpoints(setup, tmp_path):
    from exchange_st.baselines.adain import AdaINNet

    run = _run_dir(setup["model"], tmp_path / "efanet")
    content = image_io.load_image(setup["files"]["c0"])
    style = image_io.load_image(setup["files"]["style"])
    outputs = {}
    for precision in stylizer_lib.PRECISIONS:
        stylizer = stylizer_lib.load_stylizer(checkpoint_dir=run, precision=precision)
        outputs[precision] = stylizer.stylize(content, style)
    assert stylizer.model.dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_allclose(
        outputs["float32"], setup["stylizer"].stylize(content, style), atol=TOL
    )
    error = np.abs(outputs["bfloat16"] - outputs["float32"])
    assert 0 < error.max() < 0.1 and error.mean() < 0.02, (error.max(), error.mean())
    with pytest.raises(ValueError, match="precision it was exported in"):
        stylizer_lib.load_stylizer(saved_model=setup["saved"], precision="bfloat16")
    # A train.py --model=adain run stylizes too, and refuses several styles in a sentence.
    adain = AdaINNet(vgg_weights=None, upsample_filters=(16, 8, 8))
    adain.build()
    run = _run_dir(adain, tmp_path / "adain")
    config = _config(setup, tmp_path / "out", saved_model=None, checkpoint_dir=run, alphas=[0.5])
    report = stylize_job.stylize_all(config)
    assert not report.failures
    want = adain.stylize(content[None], style[None], 0.5)[0].numpy()
    np.testing.assert_allclose(image_io.load_image(report.outputs[0]), want, atol=0.5 / 255 + 1e-5)
    config = _config(
        setup,
        tmp_path / "out",
        saved_model=None,
        checkpoint_dir=run,
        styles=[setup["files"]["style"], setup["files"]["style2"]],
        style_weights=[1, 1],
    )
    with pytest.raises(ValueError, match="The AdaINNet model renders one style at a time"):
        stylize_job.stylize_all(config)


def test_too_small_inputs_name_the_file_and_the_minimum(setup, tmp_path):
    files = setup["files"]
    tiny_style = _write_rgb(str(tmp_path / "dot.png"), 1, 1, 5)
    thin_content = _write_rgb(str(tmp_path / "thin.png"), 7, 500, 6)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "exchange_st.inference.stylize",
            f"--saved_model={setup['saved']}",
            f"--content={files['c0']}",
            f"--style={tiny_style}",
            f"--output_dir={tmp_path}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1
    assert (
        f"The style image {tiny_style} is 1x1 pixels (as loaded); the network needs at least "
        "16 pixels on each side." in proc.stderr
    ), proc.stderr[-3000:]
    assert "Graph execution error" not in proc.stderr and "Traceback" not in proc.stderr
    report = stylize_job.stylize_all(
        _config(setup, tmp_path, content=thin_content), setup["stylizer"]
    )
    [(path, message)] = report.failures
    assert path == thin_content and "content image" in message and "500x7 pixels" in message
