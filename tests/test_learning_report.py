"""Tests for exchange_st.evaluation.learning_report and train.py's evaluation curve."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from conftest import small_efanet, tiny_train_config

from exchange_st.data import image_io
from exchange_st.evaluation import learning_report
from exchange_st.nn import vgg
from exchange_st.training import evaluation_curve, train_config, train_lib

SIZE = 32


def _write_images(directory, count, seed):
    rng = np.random.default_rng(seed)
    for i in range(count):
        # Odd sizes: the evaluation set centre-crops them to squares.
        image_io.save_image(directory / f"{i:02d}.png", rng.uniform(size=(SIZE + 7, SIZE + 3, 3)))
    return directory


@pytest.fixture(scope="module")
def eval_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    return _write_images(root / "content", 3, 1), _write_images(root / "style", 5, 2)


def test_code_liveness_sees_a_silenced_compressor():
    """A compressor whose last conv is dead gives every image the same code."""
    model = small_efanet()
    images = tf.random.stateless_uniform([3, 32, 40, 3], seed=[5, 0])
    alive = learning_report.code_liveness(model, images)
    assert list(alive["convs"]) == [conv.name for conv in model.compressor.convs]
    assert alive["f_std_across"] > 0
    last = model.compressor.convs[-1]
    last.bias.assign(tf.fill(last.bias.shape, -1e3))  # every ReLU negative
    dead = learning_report.code_liveness(model, images)
    assert dead["convs"][last.name] == {"alive": 0.0, "rms": 0.0}
    assert dead["f_std_across"] == 0.0
    assert "alive channels" in learning_report.format_liveness(dead)


def test_style_gain_is_zero_when_the_style_is_ignored_and_one_when_painted():
    encoder = small_efanet().encoder
    content = tf.random.stateless_uniform([3, 32, 32, 3], seed=[5, 6]).numpy()
    # Three distinct flat-ish styles, so each has its own Gram matrices.
    style = np.stack([np.full([32, 32, 3], v, np.float32) for v in (0.1, 0.5, 0.9)])
    style += 0.1 * tf.random.stateless_uniform([3, 32, 32, 3], seed=[7, 8]).numpy()
    gain = learning_report.style_gain
    assert gain(encoder, lambda c, s: c, content, style) == 0.0
    assert gain(encoder, lambda c, s: s, content, style) == pytest.approx(1.0)
    assert gain(encoder, lambda c, s: np.roll(s, -1, axis=0), content, style) < 0.0
    with pytest.raises(ValueError, match="at least 2 pairs"):
        gain(encoder, lambda c, s: c, content[:1], style[:1])


def test_eval_set_is_the_first_sorted_files_centre_cropped(eval_dirs):
    content_dir, style_dir = eval_dirs
    eval_set = learning_report.load_eval_set(content_dir, style_dir, SIZE, 2, 4)
    assert eval_set.content.shape == eval_set.style.shape == (2, SIZE, SIZE, 3)
    assert eval_set.dependence_styles.shape == (4, SIZE, SIZE, 3)
    first = image_io.load_square(content_dir / "00.png", SIZE)
    np.testing.assert_array_equal(eval_set.content[0], first)
    np.testing.assert_array_equal(eval_set.style, eval_set.dependence_styles[:2])
    again = learning_report.load_eval_set(content_dir, style_dir, SIZE, 2, 4)
    np.testing.assert_array_equal(again.dependence_styles, eval_set.dependence_styles)
    assert (
        learning_report.load_eval_set(content_dir, style_dir, SIZE, 2, 0).dependence_styles is None
    )
    with pytest.raises(ValueError, match="at least 2 contents"):
        learning_report.load_eval_set(content_dir, style_dir, SIZE, 1, 4)


def _palette_model(paint):
    """A baseline-like model: the content, moved to the style's mean colour when `paint`."""

    def stylize(content, style):
        content, style = np.asarray(content), np.asarray(style)
        if not paint:
            return content
        shift = style.mean(axis=(1, 2), keepdims=True) - content.mean(axis=(1, 2), keepdims=True)
        return np.clip(content + shift, 0.0, 1.0)

    return SimpleNamespace(encoder=vgg.VGGEncoder(vgg_weights=None), stylize=stylize)


def test_curve_row_tells_a_model_that_paints_the_palette_from_one_that_ignores_it():
    rng = np.random.default_rng(3)
    content = rng.uniform(0.3, 0.7, size=(2, SIZE, SIZE, 3)).astype(np.float32)
    # Styles of clearly different mean colours, each with some texture.
    colours = rng.uniform(0.1, 0.9, size=(6, 1, 1, 3))
    styles = np.clip(colours + 0.05 * rng.standard_normal((6, SIZE, SIZE, 3)), 0, 1)
    eval_set = learning_report.EvalSet(
        content, styles[:2].astype(np.float32), styles.astype(np.float32)
    )
    rows = {}
    for paint in (False, True):
        images, scores = learning_report.evaluate(_palette_model(paint), eval_set)
        assert images["styles"].shape == (6, SIZE, SIZE, 3)
        rows[paint] = learning_report.curve_row(7, scores)
    assert list(rows[True]) == list(learning_report.CURVE_COLUMNS)
    assert rows[True]["step"] == 7 and math.isnan(rows[True]["v_r_spread"])  # no EFANet stages
    # The content alone: no palette follow, no gain, its own luminance.
    assert rows[False]["chroma_follow"] == pytest.approx(0.0, abs=1e-6)
    assert rows[False]["style_gain"] == 0.0
    assert rows[False]["luminance_corr"] == pytest.approx(1.0)
    # Moved to each style's mean colour: the palette follows it (clipping aside).
    assert rows[True]["chroma_follow"] > 0.8 and rows[True]["chroma_r"] > 0.95
    assert rows[True]["hue_headroom"] < rows[False]["hue_headroom"]


def _train_config(model_dir, eval_dirs, steps):
    content_dir, style_dir = eval_dirs
    return tiny_train_config(
        model_dir,
        steps,
        eval_content_source=str(content_dir),
        eval_style_source=str(style_dir),
        eval_every=2,
        eval_size=SIZE,
        eval_pairs=2,
        eval_styles=4,
    )


def test_training_reports_the_curve_every_n_steps_and_once_per_step_across_a_resume(
    tmp_path, eval_dirs
):
    train_lib.train(_train_config(tmp_path, eval_dirs, steps=3))
    path = tmp_path / evaluation_curve.CURVE_FILE
    assert [r["step"] for r in evaluation_curve.read_curve(path)] == [0, 2]
    # Resumed from step 3: no report at the start (3 is not a multiple of 2), then 4.
    train_lib.train(_train_config(tmp_path, eval_dirs, steps=4))
    rows = evaluation_curve.read_curve(path)
    assert [r["step"] for r in rows] == [0, 2, 4]
    assert len(path.read_text().splitlines()) == 4  # header + 3 rows, none repeated
    assert all(np.isfinite(r["v_r_spread"]) and np.isfinite(r["total"]) for r in rows)
    assert sorted(p.name for p in (tmp_path / "images").glob("eval-*.png")) == [
        "eval-0000000.png",
        "eval-0000002.png",
        "eval-0000004.png",
    ]
    assert "chroma follow" in evaluation_curve.format_row(rows[-1])


def test_the_curve_needs_both_directories_and_two_pairs(tmp_path, eval_dirs):
    cfg = _train_config(tmp_path, eval_dirs, steps=1)
    with pytest.raises(ValueError, match="both eval_content_source and eval_style_source"):
        train_config.TrainConfig(**{**cfg.__dict__, "eval_style_source": None})
    with pytest.raises(ValueError, match="eval_pairs must be >= 2"):
        train_config.TrainConfig(**{**cfg.__dict__, "eval_pairs": 1})
