"""evaluation.figures and tools.figures: the paper's figures from a tiny random model, and what each shows."""

import os
import subprocess
import sys

import numpy as np
from conftest import small_efanet

from exchange_st.data import image_io
from exchange_st.evaluation import figures
from exchange_st.baselines.adain import AdaINNet
from exchange_st.nn import vgg
from exchange_st.saving import release, serialization

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S = 32
CELL = S + 4  # make_grid's padding of 4


def _images(n, seed):
    return list(np.random.default_rng(seed).uniform(size=(n, S, S, 3)).astype(np.float32))


def test_the_figures_have_their_layouts_and_show_what_they_claim():
    model = small_efanet(spread=True)
    contents, styles = _images(2, 1), _images(3, 2)
    grid = figures.matrix(model, contents, styles)
    assert grid.shape == (4 + 3 * CELL, 4 + 4 * CELL, 3)
    # The top-left cell is blank, the rest of the first row the styles themselves.
    np.testing.assert_allclose(grid[4 : 4 + S, 4 : 4 + S], 1.0)
    np.testing.assert_allclose(grid[4 : 4 + S, 4 + CELL : 4 + CELL + S], styles[0], atol=1 / 255)
    # Eq. 8 at alpha 0 is the pair's reconstruction I_c->c, at alpha 1 I_s->c.
    strip = figures.alpha_strip(model, contents[0], styles[0])
    assert strip.shape == (4 + CELL, 4 + 7 * CELL, 3)
    out = model(contents[0][None], styles[0][None])
    for column, key in ((1, "c2c"), (5, "s2c")):
        cell = strip[4 : 4 + S, 4 + column * CELL : 4 + column * CELL + S]
        want = np.clip(np.asarray(out[key])[0], 0, 1)
        np.testing.assert_allclose(cell, want, atol=1 / 255 + 1e-6)
    # Two styles by mask: the bright half follows the first style's stylization.
    mask = np.zeros((S, S, 1), np.float32)
    mask[:, : S // 2] = 1.0
    picture = figures.mask_figure(model, contents[0], mask, styles[0], styles[1])
    out = picture[4 : 4 + S, 4 + 4 * CELL : 4 + 4 * CELL + S]
    one, two = (np.asarray(model.stylize(contents[0][None], s[None]))[0] for s in styles[:2])
    left = slice(0, S // 2 - 4)  # away from the seam the decoder's receptive field blurs
    assert np.abs(out[:, left] - one[:, left]).mean() < np.abs(out[:, left] - two[:, left]).mean()
    # Fig. 5: content, style, then each method's picture, one row per pair.
    other = small_efanet(seed=5, spread=True)
    grid = figures.comparison([model.stylize, other.stylize], contents, styles[:2])
    assert grid.shape == (4 + 2 * CELL, 4 + 4 * CELL, 3)
    for row in range(2):
        top = 4 + row * CELL
        want = np.clip(np.asarray(other.stylize(contents[row][None], styles[row][None]))[0], 0, 1)
        np.testing.assert_allclose(
            grid[top : top + S, 4 + 3 * CELL : 4 + 3 * CELL + S], want, atol=1 / 255 + 1e-6
        )
        assert np.abs(grid[top : top + S, 4 + 2 * CELL : 4 + 2 * CELL + S] - want).max() > 0.01
    # The four outputs of a training model, one row per pair.
    assert figures.four_outputs(model, contents, styles[:2]).shape == (
        4 + 2 * CELL,
        4 + 6 * CELL,
        3,
    )


def test_the_command_writes_every_figure(tmp_path, tiny_release):
    for i, image in enumerate(_images(2, 3)):
        image_io.save_image(tmp_path / "content" / f"c{i}.png", image)
    for name, image in zip(("a", "b", "c"), _images(3, 4)):
        image_io.save_image(tmp_path / "style" / f"{name}.png", image)
    mask = np.zeros((S, S, 3), np.float32)
    mask[: S // 2] = 1.0
    image_io.save_image(tmp_path / "mask.png", mask)
    run = tmp_path / "run"
    serialization.save_weights(small_efanet(), str(run / "latest.weights.h5"), step=3)
    adain = AdaINNet(vgg_weights=None, upsample_filters=(8, 8, 8))
    adain.build()
    release.save(adain, str(tmp_path / "adain"), int8_min_params=10**12)
    vgg_file = str(tmp_path / "vgg.h5")
    vgg.write_truncated_weights(adain.encoder, vgg_file)
    proc = subprocess.run(
        [sys.executable, "-m", "tools.figures", f"--model={tiny_release['path']}", f"--run={run}"]
        + [f"--content_dir={tmp_path / 'content'}", f"--style_dir={tmp_path / 'style'}"]
        + [f"--mask={tmp_path / 'mask.png'}", "--styles=a,b,c", f"--size={S}", "--rows=2"]
        + [f"--adain={tmp_path / 'adain'}", "--comparison_pairs=2", "--gatys_iterations=2"]
        + [f"--vgg_weights={vgg_file}", f"--output_dir={tmp_path / 'out'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / "out")) == [
        "alpha.png",
        "comparison.png",
        "mask.png",
        "matrix.png",
        "outputs.png",
    ]
    # Two pairs: content, style, EFANet, AdaIN, WCT, Gatys.
    assert image_io.load_image(tmp_path / "out" / "comparison.png").shape[:2] == (
        4 + 2 * CELL,
        4 + 6 * CELL,
    )
    assert image_io.load_image(tmp_path / "out" / "matrix.png").shape[:2] == (
        4 + 3 * CELL,
        4 + 4 * CELL,
    )
