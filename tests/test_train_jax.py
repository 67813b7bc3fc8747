"""train.py on JAX with TensorFlow hidden: fit, resume, and weights the TF install loads and exports.

Every JAX run is a subprocess with `KERAS_BACKEND=jax` and a `sitecustomize`
that makes `import tensorflow` fail, as on a GPU machine with JAX only.
"""

import csv
import json
import os
import re
import subprocess
import sys
import textwrap

import h5py
import keras
import numpy as np
import pytest

from exchange_st.nn import losses
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.saving import export, loader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# configs/smoke.cfg with a tiny network, 32 px crops and 3 (then 5) steps.
OVERRIDES = [
    "--resize_short_side=32",
    "--crop_size=32",
    "--log_every=1",
    "--image_every=3",
    "--checkpoint_every=2",
    "--code_dim=8",
    "--num_exchange_blocks=1",
    "--compressor_filters=4,4",
    "--num_pre_fusion_blocks=0",
    "--num_post_fusion_blocks=0",
    "--upsample_filters=8,8,8",
]
TOL = 1e-4

# Runs on JAX without TensorFlow: argv = (model_dir, output dir).
_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    from exchange_st.saving import loader
    from exchange_st.nn import losses
    from exchange_st.training import train_config, train_lib

    model_dir, out_dir = sys.argv[1:]
    model = loader.load(model_dir)
    inputs = np.load(out_dir + "/inputs.npz")
    content, style = inputs["content"], inputs["style"]
    outputs = model(content, style)
    terms = losses.compute_losses(outputs, content, style, model.encoder, model.loss_config)
    np.savez(
        out_dir + "/jax.npz",
        s2c=np.asarray(outputs["s2c"]),
        f_com=np.asarray(outputs["f_com"]),
        **{"loss/" + k: np.asarray(v) for k, v in terms.items()},
    )
    # train.py's own restore of the run: weights, step and Adam slots.
    with open(model_dir + "/config.json") as f:
        config = train_config.TrainConfig.from_dict(json.load(f))
    trainer = train_lib.Trainer(config)
    step = trainer.restore()
    model = trainer.model
    # What the restore put in every variable, for the test to compare with the file.
    np.savez(
        out_dir + "/restored.npz",
        **{f"w{i}": np.asarray(v) for i, v in enumerate(model.weights)},
        **{f"s{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)},
    )
    info = {
        "class": type(model).__name__,
        "iterations": int(np.asarray(model.optimizer.iterations)),
        "step": step,
        "num_weights": len(model.weights),
        "num_slots": len(model.optimizer.variables),
        "tf_imported": "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None,
    }
    with open(out_dir + "/info.json", "w") as f:
        json.dump(info, f)
    """
)


def _hide_tensorflow(tmp_path):
    shim = tmp_path / "no_tf"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(
        "import sys\n"
        "# As on a machine without TensorFlow: `import tensorflow` raises ImportError.\n"
        "sys.modules['tensorflow'] = None\n"
    )
    path = os.pathsep.join([str(shim), REPO])
    return dict(
        os.environ,
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=path,
        TF_CPP_MIN_LOG_LEVEL="2",
    )


def _run(args, env, cwd, timeout=600):
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def _rows(model_dir):
    with open(os.path.join(model_dir, "train_log.csv"), newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    pytest.importorskip("jax")
    tmp = tmp_path_factory.mktemp("jax_train")
    env = _hide_tensorflow(tmp)
    model_dir = str(tmp / "run")
    train = ["train.py", "--flagfile=configs/smoke.cfg", *OVERRIDES, f"--model_dir={model_dir}"]
    first = _run([*train, "--steps=3"], env, REPO)
    first_rows = _rows(model_dir)
    resumed = _run([*train, "--steps=5"], env, REPO)
    rng = np.random.default_rng(0)
    content = rng.uniform(size=(1, 40, 32, 3)).astype(np.float32)
    style = rng.uniform(size=(1, 32, 48, 3)).astype(np.float32)
    np.savez(tmp / "inputs.npz", content=content, style=style)
    _run(["-c", _LOAD_SCRIPT, model_dir, str(tmp)], env, str(tmp))
    with open(tmp / "info.json") as f:
        info = json.load(f)
    return dict(
        tmp=tmp,
        model_dir=model_dir,
        first=first,
        first_rows=first_rows,
        resumed=resumed,
        info=info,
        arrays=dict(np.load(tmp / "jax.npz")),
        content=content,
        style=style,
    )


def test_smoke_config_trains_on_jax_without_tensorflow(jax_run):
    log, model_dir = jax_run["first"], jax_run["model_dir"]
    assert "Training efanet (jax backend) from step 0 to 3" in log
    assert "No TensorFlow: no TensorBoard summaries" in log
    assert re.search(r"Done: step 3/3", log)
    rows = jax_run["first_rows"]
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    for row in rows:
        for key in ("loss", "content", "style", "style/relu1_1", "rec", "com", "com/orthogonality"):
            assert np.isfinite(float(row[key])), key
    names = set(os.listdir(model_dir))
    assert {"latest.weights.h5", "latest.config.json", "config.json", "train_log.csv"} <= names
    assert os.listdir(os.path.join(model_dir, "images")) == ["step-0000003.png"]
    assert "train" not in names  # TensorBoard event files need TensorFlow.


def test_resume_on_jax_restores_the_step_and_optimizer(jax_run):
    log = jax_run["resumed"]
    assert "Resumed from step 3" in log and "from step 3 to 5" in log
    rows = _rows(jax_run["model_dir"])
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    # The warm-up (100 steps, 1e-4) continues from the restored iteration count.
    assert float(rows[3]["learning_rate"]) == pytest.approx(1e-4 * 5 / 100)
    info = jax_run["info"]
    assert info["class"] == "ExchangeStyleTransfer" and not info["tf_imported"]
    assert info["iterations"] == info["step"] == 5
    # Right after the restore, JAX's Adam state is the file's, slot by slot (read here
    # with h5py: optimizer/vars/<i> in the optimizer's variable order) ...
    restored = np.load(jax_run["tmp"] / "restored.npz")
    path = os.path.join(jax_run["model_dir"], "latest.weights.h5")
    with h5py.File(path, "r") as f:
        saved_slots = [
            np.asarray(f[f"optimizer/vars/{i}"]) for i in range(len(f["optimizer/vars"]))
        ]
    assert info["num_slots"] == len(saved_slots) > 10
    moments = 0
    for i, saved in enumerate(saved_slots):
        np.testing.assert_array_equal(restored[f"s{i}"], saved)
        moments += int(saved.ndim > 0 and np.any(saved))
    assert moments > 10  # the moments hold values, so equal means restored, not zero
    # ... and its weights are those TensorFlow's loader reads from the same file.
    tf_model = loader.load(jax_run["model_dir"])
    assert info["num_weights"] == len(tf_model.weights)
    for i, v in enumerate(tf_model.weights):
        np.testing.assert_array_equal(restored[f"w{i}"], keras.ops.convert_to_numpy(v))


def test_jax_weights_load_into_the_tensorflow_model_and_export(jax_run, tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the loading side runs on the TensorFlow backend")
    model = loader.load(jax_run["model_dir"])
    assert isinstance(model, ExchangeStyleTransfer)
    content, style = jax_run["content"], jax_run["style"]
    outputs = model(content, style)
    want = jax_run["arrays"]
    for key in ("s2c", "f_com"):
        scale = max(1.0, float(np.abs(want[key]).max()))
        np.testing.assert_allclose(outputs[key].numpy(), want[key], rtol=0, atol=TOL * scale)
    terms = losses.compute_losses(outputs, content, style, model.encoder, model.loss_config)
    for key, value in terms.items():
        expected = float(want["loss/" + key])
        assert abs(float(value) - expected) <= TOL * max(1.0, abs(expected)), key
    # Exported as is: the SavedModel computes what the loaded model does.
    import tensorflow as tf

    export.export_saved_model(model, tmp_path / "export")
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    np.testing.assert_allclose(
        loaded.stylize(content, style, 0.5).numpy(),
        model.stylize(content, style, 0.5).numpy(),
        atol=TOL,
    )


def test_data_parallel_over_two_devices_matches_one(jax_run, tmp_path):
    # Two host devices stand in for two GPUs: DataParallel shards the batch.
    env = _hide_tensorflow(tmp_path)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    model_dir = str(tmp_path / "run")
    log = _run(
        [
            "train.py",
            "--flagfile=configs/smoke.cfg",
            *OVERRIDES,
            f"--model_dir={model_dir}",
            "--steps=3",
        ],
        env,
        REPO,
    )
    assert "from step 0 to 3 on 2 replica(s)" in log
    for single, sharded in zip(jax_run["first_rows"], _rows(model_dir), strict=True):
        for key in ("loss", "content", "style", "rec", "com"):
            assert float(sharded[key]) == pytest.approx(float(single[key]), rel=1e-4), key
