"""The pretrained-model release: the inference weights of an EFANet, int8, in checksummed safetensors shards.

A release directory holds

  manifest.json            the model's class and `get_config()`, the
                           quantisation scheme, every tensor's shape, storage
                           dtype and file, each file's size and sha256,
                           provenance (training history, release check)
  efanet-0000K-of-0000N.safetensors  the tensors, <= 15 MB per file: each
                           stored kernel under its name (int8 or float16),
                           an int8 kernel's per-channel scales under
                           `<name>.scale`, the other tensors float32
  vgg19_to_relu4_1_float16.h5  the fixed VGG-19 encoder it was trained with
  README.md                its model card (`model_card`)

and only what stylization needs: the `I_s->c` path (compressor, `fc_uni_c`,
`fc_uni_s`, `fc_com`, the Feature Exchange blocks, the style heads and
`decoder_c`, ~34M parameters). `decoder_s` and `fc_rec` serve training only
(`I_c->s`, `I_s->s` and `L_com`) and are left out; the VGG ships as its own
file because it is public, fixed, and shared with the perceptual metric.
Any safetensors reader gets the stored tensors (`safetensors.numpy.load_file`);
`w = q * scale` per output channel gives an int8 kernel's float values.

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
dequantised float32 weights. Releases of format version 1 (raw `.bin`
shards with byte offsets in the manifest) still load.

A loaded release is inference-only: `decoder_s` and `fc_rec` keep their
fresh initialisation (so `call`'s `c2s` and `s2s` outputs mean nothing) and
`compile` refuses, naming the release; train from a `train.py` model_dir,
or continue it with `train.py --init_from=<release>`.

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
import safetensors.numpy
from absl import logging

from exchange_st.nn import vgg as vgg_lib
from exchange_st.saving import model_card, quantization, serialization

MANIFEST = "manifest.json"
# The on-disk format name every release carries (not a module path: releases
# written before the package moved into subpackages say the same).
FORMAT = "exchange_st.release"
FORMAT_VERSION = 2
# Version 1: raw .bin shards, tensors placed by byte offsets in the manifest.
READABLE_VERSIONS = (1, 2)
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


# Each model family ships in its own folder beside pretrained/efanet, found through its own
# variable; AdaIN is the baseline trained like the EFANet preview (for Table 1).
ENV_VARS = {"efanet": ENV_VAR, "adain": ENV_VAR + "_ADAIN"}
_NAMES = {"efanet": "EFANet", "adain": "AdaIN"}


def _source_dir(family):
    return DEFAULT_DIR if family == "efanet" else os.path.join(os.path.dirname(DEFAULT_DIR), family)


def default_path(family="efanet"):
    """`$EXCHANGE_ST_PRETRAINED` (`_ADAIN` for AdaIN), else the source tree's `pretrained/<family>/`."""
    return os.environ.get(ENV_VARS[family]) or _source_dir(family)


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
    """Groups named arrays into shards of at most `max_bytes`; returns each array's file index."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.shards = [{}]
        self._sizes = [0]

    def add(self, name, array):
        array = np.ascontiguousarray(array)
        if array.nbytes > self.max_bytes:
            raise ValueError(f"{name}: {array.nbytes} bytes exceed the shard size {self.max_bytes}")
        if self._sizes[-1] + array.nbytes > self.max_bytes:
            self.shards.append({})
            self._sizes.append(0)
        self.shards[-1][name] = array
        self._sizes[-1] += array.nbytes
        return len(self.shards) - 1


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
            entry["file"] = writer.add(key, q)
            # A kernel and its scales share a file, so any reader finds both.
            if writer.add(f"{key}.scale", scale) != entry["file"]:
                raise ValueError(f"{key} and its scales landed in different shards")
        else:
            entry["file"] = writer.add(key, w.astype(dtype))
        tensors.append(entry)
    for name in os.listdir(directory):  # An earlier release's shards, of either layout.
        if name.startswith(f"{model.RELEASE_NAME}-") and name.endswith((".bin", ".safetensors")):
            os.remove(os.path.join(directory, name))
    n = len(writer.shards)
    shards = []
    for i, arrays in enumerate(writer.shards):
        name = f"{model.RELEASE_NAME}-{i + 1:05d}-of-{n:05d}.safetensors"
        path = os.path.join(directory, name)
        safetensors.numpy.save_file(
            arrays, path, metadata={"format": FORMAT, "quantization": quantization.SCHEME}
        )
        os.chmod(path, 0o644)  # The writer creates it private; a release is for everyone.
        shards.append({"file": name, "bytes": os.path.getsize(path), "sha256": _sha256(path)})
    for entry in tensors:
        entry["file"] = shards[entry["file"]]["file"]
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
        "provenance": _portable(provenance or {}),
    }
    with open(os.path.join(directory, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    model_card.write(directory, manifest, model.RELEASE_NAME)
    logging.info(
        "Wrote release %s (%d parameters, %d shards).", directory, manifest["parameters"], n
    )
    return manifest


def _portable(value):
    """`value` with the home directory of paths written as `~`: a release travels to other
    machines, so its provenance names the run folders without this machine's user."""
    home = os.path.expanduser("~")
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and home not in ("", "/") and value.startswith(home + os.sep):
        return "~" + value[len(home) :]
    return value


def add_provenance(directory, facts: dict) -> dict:
    """Records `facts` (e.g. `tools/release_check.py`'s scores) in a release's manifest and card.

    Only the provenance changes: the tensors, their files and checksums stay.
    Returns the updated manifest.
    """
    manifest = read_manifest(directory)
    manifest["provenance"].update(_portable(facts))
    path = os.path.join(os.fspath(directory), MANIFEST)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, path)
    model_card.write(directory, manifest, manifest["shards"][0]["file"].split("-")[0])
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
    if manifest.get("format") != FORMAT or manifest.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(
            f"{manifest_path} is not a {FORMAT} manifest of version "
            f"{' or '.join(map(str, READABLE_VERSIONS))} (format {manifest.get('format')!r}, "
            f"version {manifest.get('format_version')!r})."
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


def read_tensors(path, manifest=None) -> dict[str, np.ndarray]:
    """`{name: float32 array}` of a release's stored tensors, dequantised, every file verified."""
    path = os.fspath(path)
    manifest = manifest or read_manifest(path)
    data = {entry["file"]: _read_verified(path, entry) for entry in manifest["shards"]}
    if manifest["format_version"] == 1:
        return _tensors_v1(manifest, list(data.values()))
    stored = {}
    for name, blob in data.items():
        stored[name] = safetensors.numpy.load(blob)
    tensors = {}
    for t in manifest["tensors"]:
        arrays = stored[t["file"]]
        w = arrays[t["name"]]
        if t["dtype"] == "int8":
            w = quantization.dequantize(w, arrays[f"{t['name']}.scale"])
        tensors[t["name"]] = np.asarray(w, np.float32).reshape(t["shape"])
    return tensors


def _tensors_v1(manifest, shards) -> dict[str, np.ndarray]:
    """Version 1: each tensor at a byte offset of a raw little-endian shard."""

    def array(place, dtype, shape):
        data = shards[place["shard"]][place["offset"] : place["offset"] + place["bytes"]]
        return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)

    tensors = {}
    for t in manifest["tensors"]:
        w = array(t["data"], t["dtype"], t["shape"])
        if t["dtype"] == "int8":
            w = quantization.dequantize(w, array(t["scale"], "float32", [t["shape"][-1]]))
        tensors[t["name"]] = np.asarray(w, np.float32)
    return tensors


def load(path=None, instead=None, dtype=None, family="efanet"):
    """The model of a release (`ExchangeStyleTransfer` or `AdaINNet`), on the current Keras backend.

    Args:
      path: a release directory; None: `default_path(family)`.
      instead: what the caller's user may pass when no release is found
        (e.g. `"--checkpoint_dir or --saved_model"`), for the error.
      dtype: a Keras dtype policy for the model (e.g. `"bfloat16"`); None:
        float32.
      family: which pretrained model `path=None` means: `"efanet"` or `"adain"`.

    Returns:
      A built, inference-only model (see the module doc).

    Raises:
      NoPretrainedModel: nothing at the default location (or at `path`).
      ValueError: a file's sha256 differs from the manifest, or the tensors
        do not fit the model the manifest describes.
    """
    instead = instead or "a trained model (a train.py model_dir)"
    variable = ENV_VARS[family]
    if path is None and os.environ.get(variable):
        path = os.environ[variable]
        if not is_release(path):
            raise NoPretrainedModel(
                f"No release at {path} (set by {variable}): {MANIFEST} is missing there; "
                f"point {variable} at a release directory or pass {instead}."
            )
    elif path is None:
        path = _source_dir(family)
        if not is_release(path):
            # The source tree ships one: an installed copy without that tree gets here.
            raise NoPretrainedModel(
                f"No pretrained {_NAMES[family]} at {path} (no {MANIFEST}): this installation "
                f"has no source tree with pretrained/{family}; set {variable} to a release "
                f"directory or pass {instead} instead."
            )
    path = os.fspath(path)
    manifest = read_manifest(path)
    tensors = read_tensors(path, manifest)
    vgg_path = os.path.join(path, manifest["vgg"]["file"])
    _read_verified(path, manifest["vgg"])
    overrides = {} if dtype is None else {"dtype": dtype}
    model = serialization.model_from_serialized(
        manifest["model"], vgg_weights=vgg_path, **overrides
    )
    model.build()
    variables = quantization.inference_variables(model)
    if set(tensors) != set(variables):
        raise ValueError(
            f"{os.path.join(path, MANIFEST)} does not fit its model: tensors missing "
            f"{sorted(set(variables) - set(tensors))[:5]}, unknown {sorted(set(tensors) - set(variables))[:5]}."
        )
    for key, v in variables.items():
        w = tensors[key]
        if tuple(w.shape) != tuple(v.shape):
            raise ValueError(
                f"{os.path.join(path, MANIFEST)}: {key} has shape {list(w.shape)}, the model "
                f"expects {list(v.shape)}."
            )
        v.assign(w)
    if model.RELEASE_LEFT_OUT:
        model.inference_only = (
            f"{path} is an inference-only release ({' and '.join(model.RELEASE_LEFT_OUT)}, "
            "which only training uses, are not stored): train from a train.py model_dir instead."
        )
    logging.info("Loaded release %s (%d parameters).", path, manifest["parameters"])
    return model
