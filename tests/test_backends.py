"""The keras.ops core on JAX: forward, Eq. 7 losses, a gradient step, and weights shared with TF."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from exchange_st.nn import losses
from exchange_st.nn.model import ExchangeStyleTransfer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small codes and decoder; the VGG encoder keeps its real size.
SMALL = dict(
    code_dim=16,
    num_exchange_blocks=2,
    compressor_filters=(4, 4, 4),
    num_pre_fusion_blocks=1,
    num_post_fusion_blocks=1,
    upsample_filters=(8, 8, 8),
    # Keras' default initialisation: the output spreading below and the
    # every-variable gradient check assume it (a scaled model starts flat).
    initialization="keras",
)
# The style is reflect-padded to the content's 32 x 32, the size `build`
# traces, so JAX compiles each eager op once.
CONTENT_SHAPE = (1, 32, 32, 3)
STYLE_SHAPE = (1, 29, 27, 3)
TOL = 1e-4


def _inputs():
    rng = np.random.default_rng(0)
    content = rng.uniform(size=CONTENT_SHAPE).astype(np.float32)
    return content, rng.uniform(size=STYLE_SHAPE).astype(np.float32)


# Runs with KERAS_BACKEND=jax: argv = (output dir, SMALL as JSON); reads inputs.npz there.
_JAX_SCRIPT = r"""
import json, sys
import numpy as np
import keras
from exchange_st.nn import losses
from exchange_st.nn.model import ExchangeStyleTransfer

tf_imported = "tensorflow" in sys.modules  # by the core itself, before Keras' seeding
import jax

out_dir, small = sys.argv[1], json.loads(sys.argv[2])
keras.utils.set_random_seed(0)
model = ExchangeStyleTransfer(vgg_weights=None, **small)
model.build()
# A fresh decoder renders ~1e-4; scaling its last conv makes the s2c
# comparison one of real signal.
rgb = model.decoder_c.to_rgb
rgb.kernel.assign(rgb.kernel * 1000.0)
rgb.bias.assign(rgb.bias + 0.5)
inputs = np.load(out_dir + "/inputs.npz")
content, style = inputs["content"], inputs["style"]
outputs = model(content, style)
terms = losses.compute_losses(outputs, content, style, model.encoder)
try:
    model(content * 255.0, style)
    range_error = None
except ValueError as e:
    range_error = str(e)

trainable = [v.value for v in model.trainable_variables]
frozen = [v.value for v in model.non_trainable_variables]

def loss_fn(trainable, content, style):
    out, _ = model.stateless_call(trainable, frozen, content, style, training=True)
    return losses.compute_losses(out, content, style, model.encoder)["total"]

step = jax.jit(jax.value_and_grad(loss_fn))
total, grads = step(trainable, content, style)
norm = float(np.sqrt(sum(np.sum(np.square(g)) for g in grads)))
updated = [v - 1e-3 * g / norm for v, g in zip(trainable, grads)]
total_after, _ = step(updated, content, style)

model.save_weights(out_dir + "/efanet.weights.h5")
np.savez(
    out_dir + "/jax.npz",
    s2c=np.asarray(outputs["s2c"]),
    **{"loss/" + k: np.asarray(v) for k, v in terms.items()},
)
info = {
    "tf_imported": tf_imported,
    "shapes": {k: list(outputs[k].shape) for k in ("s2c", "c2c", "c2s", "s2s")},
    "range_error": range_error,
    "jit_total": float(total),
    "grads_finite": all(bool(np.all(np.isfinite(g))) for g in grads),
    "grads_nonzero": sum(bool(np.any(g != 0)) for g in grads),
    "num_trainable": len(trainable),
    "total_after_step": float(total_after),
}
with open(out_dir + "/info.json", "w") as f:
    json.dump(info, f)
"""


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    """Builds, runs, differentiates and saves the small model in a JAX-backend interpreter."""
    pytest.importorskip("jax")
    tmp = tmp_path_factory.mktemp("jax")
    content, style = _inputs()
    np.savez(tmp / "inputs.npz", content=content, style=style)
    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, "-c", _JAX_SCRIPT, str(tmp), json.dumps(SMALL)],
        cwd=str(tmp),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp / "info.json") as f:
        info = json.load(f)
    return dict(info=info, arrays=dict(np.load(tmp / "jax.npz")), weights=tmp / "efanet.weights.h5")


def test_jax_forward_losses_and_gradient_step(jax_run):
    info, arrays = jax_run["info"], jax_run["arrays"]
    assert info["tf_imported"] is False
    (h, w), (h2, w2) = CONTENT_SHAPE[1:3], STYLE_SHAPE[1:3]
    assert info["shapes"] == {
        "s2c": [1, h, w, 3],
        "c2c": [1, h, w, 3],
        "c2s": [1, h2, w2, 3],
        "s2s": [1, h2, w2, 3],
    }
    loss_keys = [k for k in arrays if k.startswith("loss/")]
    assert {"loss/total", "loss/style/relu4_1", "loss/com/orthogonality"} <= set(loss_keys)
    assert all(np.isfinite(arrays[k]) for k in loss_keys)
    # Concrete values are range-checked on JAX too.
    assert "divided by 255" in info["range_error"]
    # The jitted gradient (values traced, range check skipped) is the eager loss's.
    assert info["jit_total"] == pytest.approx(float(arrays["loss/total"]), rel=1e-5)
    assert info["grads_finite"]
    assert info["grads_nonzero"] == info["num_trainable"]
    assert info["total_after_step"] < info["jit_total"]


def test_weights_saved_on_jax_load_on_tensorflow(jax_run):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the loading side runs on the TensorFlow backend")
    keras.utils.set_random_seed(0)
    model = ExchangeStyleTransfer(vgg_weights=None, **SMALL)
    model.build()
    model.load_weights(jax_run["weights"])
    content, style = _inputs()
    outputs = model(content, style)
    terms = losses.compute_losses(outputs, content, style, model.encoder)
    want = jax_run["arrays"]
    assert 0.05 < float(np.std(want["s2c"]))  # real signal, not ~0
    np.testing.assert_allclose(outputs["s2c"].numpy(), want["s2c"], rtol=0, atol=TOL)
    for key, value in terms.items():
        expected = float(want["loss/" + key])
        # 1e-4 absolute, relative for terms above 1 (float32 sums of squares).
        assert abs(float(value) - expected) <= TOL * max(1.0, abs(expected)), key
