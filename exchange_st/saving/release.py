"""The pretrained-model release: the inference weights of an EFANet, int8, in checksummed shards.

A release directory holds

  manifest.json            the model's class and `get_config()`, the
                           quantisation scheme, every tensor's shape and
                           place, each file's size and sha256, provenance
  efanet-0000K-of-0000N.bin  raw little-endian tensor bytes, <= 15 MB each
  vgg19_to_relu4_1_float16.h5  the fixed VGG-19 encoder it was trained with

and only what stylization needs: the `I_s->c` path (compressor, `fc_uni_c`,
`fc_uni_s`, `fc_com`, the Feature Exchange blocks, the style heads and
`decoder_c`, ~34M parameters). `decoder_s` and `fc_rec` serve training only
(`I_c->s`, `I_s->s` and `L_com`) and are left out; the VGG ships as its own
file because it is public, fixed, and shared with the perceptual metric.

Kernels (every rank >= 2 `kernel`) are stored as int8 with one float32
scale per output channel (the last axis): symmetric, `w ~ q * scale`,
`scale = max|w| / 127`, so each weight is within `scale / 2` of its float
value. Everything else (biases) is float32. `int8_min_params` > 0 keeps
kernels smaller than that in float16 (0.05% error instead of ~1%): the
bytes are in the 512-channel decoder convolutions and the compressor's
FC, while the small layers of the style path move every pixel at once;
`tools/make_release.py` uses it when all-int8 misses the error target.
Loading verifies every file's sha256, rebuilds the model with
`from_config` on the current backend (TensorFlow or JAX) and sets the
dequantised float32 weights.

A loaded release is inference-only: `decoder_s` and `fc_rec` keep their
fresh initialisation (so `call`'s `c2s` and `s2s` outputs mean nothing) and
`compile` refuses, naming the release; train from a `train.py` model_dir.

The default release is `$EXCHANGE_ST_PRETRAINED` if set, else
`pretrained/efanet/` of the source tree this package runs from (an
installed copy without that tree needs the variable or an explicit path).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import keras
import numpy as np
from absl import logging

from exchange_st.nn import vgg as vgg_lib
from exchange_st.saving import quantization, serialization

MANIFEST = "manifest.json"
# The on-disk format name every release carries (not a module path: releases
# written before the package moved into subpackages say the same).
FORMAT = "exchange_st.release"
FORMAT_VERSION = 1
ENV_VAR = "EXCHANGE_ST_PRETRAINED"
# The source tree's root: exchange_st/saving/release.py -> ../../..
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DIR = os.path.join(_SOURCE_ROOT, "pretrained", "efanet")
# Under the 16 MiB a result file of the training machine may have, with room.
MAX_SHARD_BYTES = 15_000_000
VGG_FILE = "vgg19_to_relu4_1_float16.h5"
# Each model class names what its stylization reads, `release_layers()`,
# and what a release leaves out, `RELEASE_LEFT_OUT` (ExchangeStyleTransfer:
# the s2c path; AdaINNet: its decoder); the VGG always ships as its own file.
_CHUNK = 1 << 20


class NoPretrainedModel(FileNotFoundError):
    """No release where one was looked for."""


def default_path():
    """`$EXCHANGE_ST_PRETRAINED`, else the source tree's `pretrained/efanet/`."""
    return os.environ.get(ENV_VAR) or DEFAULT_DIR


def is_release(path):
    return path is not None and os.path.isfile(os.path.join(os.fspath(path), MANIFEST))


# ----------------------------------------------------------------------------
# Writing.
# ----------------------------------------------------------------------------


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _ShardWriter:
    """Appends arrays to shard buffers of at most `max_bytes`; returns their places."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.shards = [bytearray()]

    def add(self, array):
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        if len(data) > self.max_bytes:
            raise ValueError(
                f"a tensor of {len(data)} bytes exceeds the shard size {self.max_bytes}"
            )
        if len(self.shards[-1]) + len(data) > self.max_bytes:
            self.shards.append(bytearray())
        offset = len(self.shards[-1])
        self.shards[-1] += data
        return {"shard": len(self.shards) - 1, "offset": offset, "bytes": len(data)}


def save(
    model,
    directory,
    vgg_file=None,
    copy_vgg=True,
    provenance=None,
    int8_min_params=0,
    max_shard_bytes=MAX_SHARD_BYTES,
):
    """Writes the release of a trained model into `directory`.

    Args:
      model: a built `ExchangeStyleTransfer` (or `AdaINNet`: any model with
        `release_layers()` and `RELEASE_NAME`).
      directory: created; files of an earlier release there are replaced.
      vgg_file: the VGG h5 file the model's encoder was built from (checked
        against the encoder's weights); None writes the encoder's weights as
        float16 (float32 if float16 would change them) instead.
      copy_vgg: copy `vgg_file` into the release (False: the manifest names
        it and its sha256 only, and it is copied in later, e.g. when the
        release comes back from a machine that may return few files).
      provenance: JSON-ready facts recorded in the manifest (training run,
        quantisation error).
      int8_min_params: kernels with fewer parameters are stored as float16
        (0: every kernel int8).
      max_shard_bytes: largest shard file.

    Returns:
      The manifest (a dict).
    """
    if not hasattr(model, "release_layers"):
        raise ValueError(
            f"a release holds an ExchangeStyleTransfer or an AdaINNet, got {type(model).__name__}"
        )
    os.makedirs(directory, exist_ok=True)
    writer, tensors = _ShardWriter(max_shard_bytes), []
    for key, v in quantization.inference_variables(model).items():
        w = keras.ops.convert_to_numpy(v).astype(np.float32)
        dtype = quantization.storage_dtype(key, w, int8_min_params)
        entry = {"name": key, "shape": list(w.shape), "dtype": dtype}
        if dtype == "int8":
            q, scale = quantization.quantize(w)
            entry.update(data=writer.add(q), scale=writer.add(scale))
        else:
            entry.update(data=writer.add(w.astype(dtype)))
        tensors.append(entry)
    n = len(writer.shards)
    shards = []
    for i, data in enumerate(writer.shards):
        name = f"{model.RELEASE_NAME}-{i + 1:05d}-of-{n:05d}.bin"
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
        shards.append(
            {"file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": serialization.serialize_model(model),
        "quantization": {"scheme": quantization.SCHEME, "int8_min_params": int(int8_min_params)},
        "left_out": ["encoder (shipped as the VGG file)", *model.RELEASE_LEFT_OUT],
        "parameters": int(sum(int(np.prod(t["shape"])) for t in tensors)),
        "vgg": _save_vgg(model.encoder, directory, vgg_file, copy_vgg),
        "shards": shards,
        "tensors": tensors,
        "provenance": provenance or {},
    }
    with open(os.path.join(directory, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    logging.info(
        "Wrote release %s (%d parameters, %d shards).", directory, manifest["parameters"], n
    )
    return manifest


def _save_vgg(encoder, directory, vgg_file, copy_vgg):
    if vgg_file is None:
        weights = [keras.ops.convert_to_numpy(w) for w in encoder.weights]
        exact = all(np.array_equal(w.astype(np.float16).astype(w.dtype), w) for w in weights)
        dtype = "float16" if exact else "float32"
        name = VGG_FILE if exact else "vgg19_to_relu4_1_float32.h5"
        vgg_lib.write_truncated_weights(encoder, os.path.join(directory, name), dtype)
        vgg_file = os.path.join(directory, name)
    else:
        name = os.path.basename(vgg_file)
        _check_vgg_matches(encoder, vgg_file)
        if copy_vgg and os.path.abspath(vgg_file) != os.path.abspath(os.path.join(directory, name)):
            shutil.copyfile(vgg_file, os.path.join(directory, name))
    return {"file": name, "bytes": os.path.getsize(vgg_file), "sha256": _sha256(vgg_file)}


def _check_vgg_matches(encoder, vgg_file):
    convs = [layer for layer in encoder.blocks if isinstance(layer, keras.layers.Conv2D)]
    stored = vgg_lib.read_h5_layer_weights(vgg_file, [layer.name for layer in convs])
    for layer in convs:
        for have, want in zip(layer.weights, stored[layer.name]):
            if not np.allclose(keras.ops.convert_to_numpy(have), want, rtol=0, atol=1e-6):
                raise ValueError(
                    f"{vgg_file} is not the VGG the model's encoder holds ({layer.name} "
                    "differs); pass the file the model was trained with."
                )


# ----------------------------------------------------------------------------
# Loading.
# ----------------------------------------------------------------------------


def read_manifest(path):
    """The manifest of the release at `path`; raises `NoPretrainedModel` if there is none."""
    manifest_path = os.path.join(os.fspath(path), MANIFEST)
    if not os.path.isfile(manifest_path):
        raise NoPretrainedModel(f"No release at {path}: {manifest_path} does not exist.")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{manifest_path} is not a version-{FORMAT_VERSION} {FORMAT} manifest "
            f"(format {manifest.get('format')!r}, version {manifest.get('format_version')!r})."
        )
    return manifest


def _read_verified(directory, entry):
    """The bytes of a listed file, after checking its sha256."""
    path = os.path.join(directory, entry["file"])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: the release's manifest lists it.")
    with open(path, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(
            f"{path} is corrupt or not this release's file: its sha256 is {digest}, the "
            f"manifest says {entry['sha256']}."
        )
    return data


def _array(shards, place, dtype, shape):
    data = shards[place["shard"]][place["offset"] : place["offset"] + place["bytes"]]
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)


def load(path=None, instead=None, dtype=None):
    """The `ExchangeStyleTransfer` of a release, on the current Keras backend.

    Args:
      path: a release directory; None: `default_path()`.
      instead: what the caller's user may pass when no release is found
        (e.g. `"--checkpoint_dir or --saved_model"`), for the error.
      dtype: a Keras dtype policy for the model (e.g. `"bfloat16"`); None:
        float32.

    Returns:
      A built, inference-only model (see the module doc).

    Raises:
      NoPretrainedModel: nothing at the default location (or at `path`).
      ValueError: a file's sha256 differs from the manifest, or the tensors
        do not fit the model the manifest describes.
    """
    instead = instead or "a trained model (a train.py model_dir)"
    if path is None and os.environ.get(ENV_VAR):
        path = os.environ[ENV_VAR]
        if not is_release(path):
            raise NoPretrainedModel(
                f"No release at {path} (set by {ENV_VAR}): {MANIFEST} is missing there; "
                f"point {ENV_VAR} at a release directory or pass {instead}."
            )
    elif path is None:
        path = DEFAULT_DIR
        if not is_release(path):
            # Reword once a release ships: then only an installed copy without
            # the source tree gets here.
            raise NoPretrainedModel(
                f"No pretrained EFANet is shipped with exchange_st yet (no {MANIFEST} in "
                f"{path}): pass {instead} instead, or set {ENV_VAR} to a release directory."
            )
    path = os.fspath(path)
    manifest = read_manifest(path)
    shards = [_read_verified(path, entry) for entry in manifest["shards"]]
    vgg_path = os.path.join(path, manifest["vgg"]["file"])
    _read_verified(path, manifest["vgg"])
    overrides = {} if dtype is None else {"dtype": dtype}
    model = serialization.model_from_serialized(
        manifest["model"], vgg_weights=vgg_path, **overrides
    )
    model.build()
    variables = quantization.inference_variables(model)
    listed = {t["name"]: t for t in manifest["tensors"]}
    if set(listed) != set(variables):
        raise ValueError(
            f"{os.path.join(path, MANIFEST)} does not fit its model: tensors missing "
            f"{sorted(set(variables) - set(listed))[:5]}, unknown {sorted(set(listed) - set(variables))[:5]}."
        )
    for key, v in variables.items():
        t = listed[key]
        if tuple(t["shape"]) != tuple(v.shape):
            raise ValueError(
                f"{os.path.join(path, MANIFEST)}: {key} has shape {t['shape']}, the model "
                f"expects {list(v.shape)}."
            )
        w = _array(shards, t["data"], t["dtype"], t["shape"])
        if t["dtype"] == "int8":
            w = quantization.dequantize(w, _array(shards, t["scale"], "float32", [t["shape"][-1]]))
        v.assign(w.astype(np.float32))
    if model.RELEASE_LEFT_OUT:
        model.inference_only = (
            f"{path} is an inference-only release ({' and '.join(model.RELEASE_LEFT_OUT)}, "
            "which only training uses, are not stored): train from a train.py model_dir instead."
        )
    logging.info("Loaded release %s (%d parameters).", path, manifest["parameters"])
    return model
