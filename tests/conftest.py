"""Shared pytest setup: quiet TF logs, deterministic seeds, and the small test model.

Test modules import the model factory with `from conftest import small_efanet`
(pytest puts this directory on sys.path).
"""

import os

from exchange_st import console

# TensorFlow's native start-up lines would reach the terminal from each
# xdist worker, whose stderr pytest does not capture at import time.
console.quiet_startup([])

# Compile speed over run speed, for tests only: the suite builds hundreds of
# graphs that each run a few steps at 32 px, where LLVM's optimisation (XLA,
# in JAX runs and `jit_compile`) and Grappler's whole-graph rewrites cost
# more than they save (~30% of a JAX smoke run, ~25% of a tiny `train()`;
# docs/design.md, "The test suite's time"). Neither changes what a graph
# computes. Subprocesses inherit the XLA flag through the environment; the
# README walk's TensorFlow commands keep Grappler, as users run them.
os.environ["XLA_FLAGS"] = " ".join(
    filter(None, [os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0"])
)

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

# A small exchange model: few codes, thin decoder, no residual blocks. The
# VGG encoder keeps its real size (random weights), so every size rule holds.
SMALL_EFANET = dict(
    code_dim=16,
    num_exchange_blocks=1,
    compressor_filters=(8, 8),
    num_pre_fusion_blocks=0,
    num_post_fusion_blocks=0,
    upsample_filters=(16, 8, 8),
)


def tiny_train_config(model_dir, steps=4, **overrides):
    """A `TrainConfig` of the small exchange model on built-in 32 px pairs, batch 2, random VGG.

    `overrides` set any TrainConfig field (e.g. `eval_every=2`, `init_from=...`).
    """
    from exchange_st.data import sources
    from exchange_st.training import train_config

    kwargs = dict(
        model_dir=str(model_dir),
        vgg_weights=None,
        steps=steps,
        seed=0,
        warmup_steps=1,
        log_every=1,
        image_every=1000,
        checkpoint_every=1000,
        keep_checkpoints=1,
        num_exchange_blocks=1,
        num_pre_fusion_blocks=0,
        num_post_fusion_blocks=0,
        code_dim=16,
        compressor_filters=(8, 8),
        upsample_filters=(16, 8, 8),
    )
    kwargs.update(overrides)
    data = sources.DataConfig(
        "builtin", "builtin", resize_short_side=32, crop_size=32, batch_size=2, builtin_size=32
    )
    return train_config.TrainConfig(data=data, **kwargs)


def small_efanet(seed=0, spread=False, **overrides):
    """A built `ExchangeStyleTransfer` with random VGG: `SMALL_EFANET` updated by `overrides`.

    Args:
      seed: weight-init seed.
      spread: rescale both decoders' RGB convs so outputs spread around 0.5
        with std ~0.2. A random decoder renders values ~1e-3 around 0,
        which the [0, 1] clip of `stylize` would flatten to 0 and make every
        comparison trivially true.
      **overrides: constructor arguments.
    """
    from exchange_st.nn.model import ExchangeStyleTransfer

    keras.utils.set_random_seed(seed)
    model = ExchangeStyleTransfer(vgg_weights=None, **dict(SMALL_EFANET, **overrides))
    model.build()
    if spread:
        probe = tf.random.stateless_uniform([1, 48, 48, 3], seed=[seed, 0])
        raw = model(probe, probe[:, ::-1])
        for decoder, key in ((model.decoder_c, "s2c"), (model.decoder_s, "s2s")):
            out = raw[key]
            scale = 0.2 / float(tf.math.reduce_std(out))
            rgb = decoder.to_rgb
            rgb.bias.assign(0.5 + scale * (rgb.bias - tf.reduce_mean(out, axis=[0, 1, 2])))
            rgb.kernel.assign(rgb.kernel * scale)
    return model


# The files that take longest, longest first: with two workers taking one
# file at a time (setup.cfg), starting them first keeps one worker from
# running the walk alone at the end.
SLOW_FILES = (
    "test_readme.py",
    "test_train_jax.py",
    "test_train.py",
    "test_trainability.py",
    "test_bench.py",
    "test_export.py",
    "test_release.py",
    "test_backends.py",
)


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return SLOW_FILES.index(name) if name in SLOW_FILES else len(SLOW_FILES)

    items.sort(key=rank)  # Stable: each file keeps its tests' order.


def pytest_xdist_auto_num_workers(config):
    # Each worker holds TensorFlow, JAX and a few models (~2-3 GB), and most
    # files are single-threaded tracing, so more than 4 rarely pays.
    return max(1, min(4, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


# A tiny EFANet (real-size random VGG) whose renders spread over [0, 1].
TINY_EFANET = dict(
    code_dim=16,
    num_exchange_blocks=2,
    compressor_filters=(4, 4),
    num_pre_fusion_blocks=1,
    num_post_fusion_blocks=1,
    upsample_filters=(8, 8, 8),
    initialization="keras",
)


def make_tiny_efanet(seed=0):
    """A built `ExchangeStyleTransfer` of `TINY_EFANET` with visible outputs.

    A random decoder renders ~1e-3 around 0, which stylize's [0, 1] clip
    would flatten; the last conv is rescaled to a spread of ~0.2 around 0.5.
    """
    import numpy as np

    from exchange_st.nn.model import ExchangeStyleTransfer

    keras.utils.set_random_seed(seed)
    model = ExchangeStyleTransfer(vgg_weights=None, **TINY_EFANET)
    model.build()
    probe = np.random.default_rng(seed).uniform(size=(1, 48, 48, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(model(probe, probe[:, ::-1])["s2c"])
    rgb = model.decoder_c.to_rgb
    scale = 0.2 / float(out.std())
    rgb.bias.assign(0.5 + scale * (keras.ops.convert_to_numpy(rgb.bias) - out.mean(axis=(0, 1, 2))))
    rgb.kernel.assign(rgb.kernel * scale)
    return model


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory):
    """`{"path", "model"}`: a release of `make_tiny_efanet()` in a temporary directory.

    Tests point the default release there with `EXCHANGE_ST_PRETRAINED`;
    no release, fake or real, is ever written into the repository.
    """
    from exchange_st.saving import release

    model = make_tiny_efanet()
    path = tmp_path_factory.mktemp("release") / "efanet"
    release.save(model, str(path))
    return {"path": str(path), "model": model}
