"""exchange_st: arbitrary style transfer with pair-wise exchangeable features.

Subpackages by role; imports point one way (`tests/test_package.py`):

    nn, data          the network and its objective; images in and out
    baselines         AdaIN, WCT, Gatys (built on nn)
    saving            checkpoints, the pretrained release, SavedModel/TFLite
    training, inference, evaluation
                      train with fit; stylize; Tables 1 and 2

The names below are the public API. They load on first use, so that
`import exchange_st` does not import Keras: the scripts choose the backend
and silence TensorFlow's start-up lines (`exchange_st.console`) first.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ExchangeStyleTransfer": "exchange_st.nn.model",
    "AdaINNet": "exchange_st.baselines.adain",
    "Stylizer": "exchange_st.inference.stylizer",
    "load_stylizer": "exchange_st.inference.stylizer",
    "load_model": "exchange_st.saving.loader:load",
}
__all__ = sorted([*_EXPORTS, "from_pretrained"])


def from_pretrained(path=None, dtype=None):
    """The pretrained release (`exchange_st.saving.release`), on the current backend.

    Args:
      path: a release directory, or any other source `load_model` takes;
        None: `$EXCHANGE_ST_PRETRAINED`, else the source tree's
        `pretrained/efanet/`.
      dtype: Keras dtype policy of the rebuilt model; None: the global one.

    Returns:
      A built, inference-only `ExchangeStyleTransfer`: `stylize`,
      `stylize_regions` and the `s2c` output are the trained ones; it
      refuses `compile`.

    Raises:
      release.NoPretrainedModel: no release there (none ships yet).
    """
    from exchange_st.saving import loader  # Deferred like every export (module docstring).

    return loader.load(path, dtype=dtype)


def __getattr__(name):
    if name in _EXPORTS:
        module, _, attr = _EXPORTS[name].partition(":")
        return getattr(importlib.import_module(module), attr or name)
    raise AttributeError(f"module 'exchange_st' has no attribute {name!r}")
