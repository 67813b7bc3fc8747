"""Tests for exchange_st.training.train_lib and train.py (tiny network, 32 px crops, batch 2)."""

import csv
import dataclasses
import glob
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from exchange_st.baselines import adain as adain_lib
from exchange_st.saving import loader, serialization
from exchange_st.data import pipeline, sources
from exchange_st.training import callbacks, run_control, train_config, train_lib

REPO = Path(__file__).resolve().parents[1]
CROP = 32

# The paper's decoder has 512-channel residual blocks; the tests drop them and
# shrink every other width so one CPU step takes a fraction of a second.
TINY_ARCH = {
    "num_exchange_blocks": 1,
    "num_pre_fusion_blocks": 0,
    "num_post_fusion_blocks": 0,
    "code_dim": 32,
    "compressor_filters": (16, 16, 16, 16, 16),
    "upsample_filters": (32, 16, 16),
}


def _config(model_dir, **overrides):
    kwargs = dict(
        model_dir=str(model_dir),
        vgg_weights=None,
        steps=4,
        seed=0,
        warmup_steps=1,
        log_every=1,
        summary_every=1,
        image_every=1000,
        checkpoint_every=1000,
        keep_checkpoints=1,
        **TINY_ARCH,
    )
    kwargs.update(overrides)
    return train_config.TrainConfig(
        data=sources.DataConfig(
            "builtin",
            "builtin",
            resize_short_side=CROP,
            crop_size=CROP,
            batch_size=2,
            builtin_size=CROP,
        ),
        **kwargs,
    )


def _fixed_batch_fn(cfg):
    """Input that repeats the first two builtin pairs forever (`Trainer`'s dataset_fn)."""

    def dataset_fn(start_step):
        del start_step
        return (
            pipeline.make_pair_dataset(dataclasses.replace(cfg.data, seed=3))
            .take(1)
            .cache()
            .repeat()
        )

    return dataset_fn


class _ListHeldLayers(keras.Model):
    """A model whose convs live only in a list, which Checkpoint does not walk."""

    def __init__(self):
        super().__init__()
        self.convs = [keras.layers.Conv2D(3, 1) for _ in range(2)]

    def build(self, *args):
        for conv in self.convs:
            conv.build((None, None, None, 3))
        self.built = True

    def call(self, content, style=None, training=None):
        for conv in self.convs:
            content = conv(content)
        return {"s2c": content}


def test_refuses_a_model_whose_variables_the_checkpoint_would_miss(tmp_path, monkeypatch):
    spec = train_config.ModelSpec(build=lambda cfg: _ListHeldLayers(), architecture=("model",))
    monkeypatch.setitem(train_config.MODELS, "list_held", spec)
    with pytest.raises(AssertionError, match=r"would not save or restore 4 variables"):
        train_lib.Trainer(_config(tmp_path, model="list_held"))


def _scalar_events(model_dir):
    """{tag: {step: value}} of the scalar summaries under model_dir/train."""
    out = {}
    for path in glob.glob(os.path.join(model_dir, "train", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    out.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
                else:
                    out.setdefault(value.tag, {})[event.step] = value
    return out


def _csv_rows(model_dir):
    with open(os.path.join(model_dir, train_lib.CSV_FILE), newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _restored_step(model_dir, **overrides):
    """The step a new Trainer resumes from in model_dir."""
    return train_lib.Trainer(_config(model_dir, steps=1000, **overrides)).restore()


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A 30-step run on one repeated batch, shared to save a second trace."""
    model_dir = tmp_path_factory.mktemp("learned")
    # lr 3e-4 instead of the paper's 1e-4: at 1e-4 the tiny net needs a few
    # hundred steps to move far; at 3e-4 the loss falls to 4-21% of its start
    # within 30 steps for every seed tried (0-4), and 1e-3 was spiky. A short
    # warm-up, so that the ramp is exercised and over by the end.
    cfg = _config(model_dir, steps=30, lr=3e-4, warmup_steps=5, image_every=30, log_every=1)
    trainer = train_lib.Trainer(cfg, dataset_fn=_fixed_batch_fn(cfg))
    before = {
        "encoder": [v.numpy() for v in trainer.model.encoder.weights],
        "trainable": [v.numpy() for v in trainer.variables],
    }
    result = trainer.run()
    return SimpleNamespace(
        cfg=cfg,
        trainer=trainer,
        result=result,
        before=before,
        events=_scalar_events(model_dir),
        rows=_csv_rows(model_dir),
        saved_config=json.loads((model_dir / "config.json").read_text()),
        weights=[v.numpy() for v in trainer.model.weights],
        slots=[v.numpy() for v in trainer.optimizer.variables],
    )


def test_training_learns(learned):
    result = learned.result
    assert result.step == 30 and result.start_step == 0 and result.stopped_by is None
    # One CSV row per step (log_every=1): each row is that step's loss terms.
    assert [int(r["step"]) for r in learned.rows] == list(range(1, 31))
    totals = [r["loss"] for r in learned.rows]
    assert np.all(np.isfinite(totals))
    first, last = np.mean(totals[:3]), np.mean(totals[-3:])
    assert last < 0.6 * first, totals
    assert totals[-1] == pytest.approx(result.losses["loss"], rel=1e-6)
    assert result.checkpoint == os.path.join(learned.cfg.model_dir, "latest.weights.h5")
    assert result.steps_per_sec > 0


def test_only_non_vgg_variables_train(learned):
    trainer = learned.trainer
    encoder_ids = {id(v) for v in trainer.model.encoder.weights}
    assert encoder_ids and not encoder_ids & {id(v) for v in trainer.variables}
    for before, v in zip(learned.before["encoder"], trainer.model.encoder.weights):
        np.testing.assert_array_equal(before, v.numpy())
    changed = [
        not np.array_equal(b, v.numpy())
        for b, v in zip(learned.before["trainable"], trainer.variables)
    ]
    assert np.mean(changed) > 0.9


def test_summaries_images_and_configs(learned):
    events = learned.events
    for tag in (
        "loss",
        "content",
        "style",
        "style/relu1_1",
        "style/relu4_1",
        "rec",
        "com",
        "com/orthogonality",
        "com/reconstruction",
    ):
        assert len(events[f"train/{tag}"]) == 30, tag
        assert events[f"train/{tag}"][30] == pytest.approx(learned.rows[-1][tag], rel=1e-6)
    # The warm-up (5 steps) is over: the configured rate, in TensorBoard and the CSV.
    assert events["train/learning_rate"][2] == pytest.approx(3e-4 * 3 / 5)
    assert events["train/learning_rate"][30] == pytest.approx(3e-4)
    assert learned.rows[-1]["learning_rate"] == pytest.approx(3e-4)
    assert events["train/steps_per_sec"][30] > 0
    image = events["train/images"][30]
    assert image.metadata.plugin_data.plugin_name == "images"
    width, height, png = tf.make_ndarray(image.tensor)
    grid = tf.io.decode_png(png).numpy()
    assert grid.shape == (int(height), int(width), 3)
    # Two example rows of six columns: I_c, I_s, I_s->c, I_c->s, I_c->c, I_s->s.
    assert grid.shape[0] > 2 * CROP and grid.shape[1] > 6 * CROP
    # The same grid as a PNG file, written on every backend.
    png_file = Path(learned.cfg.model_dir, "images", "step-0000030.png")
    # (uint8 rounding differs by at most 1 between PIL and tf.image.)
    png = np.asarray(Image.open(png_file)).astype(int)
    np.testing.assert_allclose(png, grid, atol=1)
    saved = learned.saved_config
    assert saved["steps"] == 30 and saved["data"]["crop_size"] == CROP
    assert saved["loss"]["com_weight"] == 7.0 and saved["upsample_filters"] == [32, 16, 16]
    assert train_config.TrainConfig.from_dict(saved) == learned.cfg
    # The model's own config next to its weights: what every loader rebuilds.
    model_config = json.loads(Path(learned.cfg.model_dir, "latest.config.json").read_text())
    assert model_config["class_name"] == "ExchangeStyleTransfer"
    assert model_config["config"] == json.loads(json.dumps(learned.trainer.model.get_config()))


def test_resume_continues_from_saved_step_with_saved_state(learned, caplog):
    cfg = dataclasses.replace(learned.cfg, steps=32)
    # Another seed, so that every fresh variable differs from the trained one
    # and only the checkpoint can make them equal.
    second = train_lib.Trainer(
        dataclasses.replace(cfg, seed=cfg.seed + 1), dataset_fn=_fixed_batch_fn(cfg)
    )
    for w, v in zip(learned.weights, second.model.weights):
        # Fixed values (e.g. VGG's zero biases, feature scales) match anyway.
        if v.trainable or v.path.endswith("kernel"):
            assert not np.array_equal(w, v.numpy()), v.path
    # On the absl logger itself: the TFLite converter (test_export) leaves it at WARNING.
    with caplog.at_level(logging.INFO, logger="absl"):
        assert second.restore() == 30
    assert "Resumed from step 30" in caplog.text
    for w, v in zip(learned.weights, second.model.weights):
        np.testing.assert_array_equal(w, v.numpy())
    assert len(learned.slots) == len(second.optimizer.variables) > 10
    for s, v in zip(learned.slots, second.optimizer.variables):
        np.testing.assert_array_equal(s, v.numpy())
    assert int(second.optimizer.iterations.numpy()) == 30

    resumed = second.run()
    assert (resumed.start_step, resumed.step) == (30, 32)
    assert int(second.optimizer.iterations.numpy()) == 32
    assert [int(r["step"]) for r in _csv_rows(cfg.model_dir)][-3:] == [30, 31, 32]
    assert json.loads(Path(cfg.model_dir, "config.json").read_text())["steps"] == 32

    # Nothing left to do: a rerun returns at once without training.
    again = train_lib.train(cfg)
    assert (again.start_step, again.step) == (32, 32)

    # A different architecture must not be restored into.
    for change in (
        {"fusion_mode": "concat"},
        {"num_exchange_blocks": 0},
        {"model_config": {"style_statistics": True}},
    ):
        other = train_lib.Trainer(dataclasses.replace(cfg, steps=40, **change))
        with pytest.raises(ValueError, match="different architecture.*" + next(iter(change))):
            other.restore()


def test_any_model_option_trains_through_model_config(tmp_path):
    """An option that exists only in the model's constructor needs no plumbing to train."""
    cfg = _config(tmp_path, steps=1, model_config={"code_normalization": "l2"})
    trainer = train_lib.Trainer(cfg)
    assert trainer.model.compressor.output_normalization == "l2"
    trainer.run()
    saved = json.loads(Path(tmp_path, "latest.config.json").read_text())
    assert saved["config"]["code_normalization"] == "l2"
    assert json.loads(Path(tmp_path, "config.json").read_text())["model_config"] == {
        "code_normalization": "l2"
    }
    # The model validates its own options, and a field of TrainConfig has one place.
    with pytest.raises(ValueError, match="code_normalization"):
        train_lib.Trainer(_config(tmp_path / "bad", model_config={"code_normalization": "x"}))
    with pytest.raises(ValueError, match="own settings"):
        _config(tmp_path / "twice", model_config={"fusion_mode": "concat"})


def test_rec_only_steps_train_eq5_alone_then_eq7(tmp_path):
    """The first `rec_only_steps` minimise Eq. 5 alone; the step is retraced for Eq. 7."""
    cfg = _config(tmp_path, steps=3, rec_only_steps=2, model_config={"purification": "normalized"})
    trainer = train_lib.Trainer(cfg, dataset_fn=_fixed_batch_fn(cfg))
    result = trainer.run()
    assert result.step == 3 and not trainer.model.reconstruction_only
    # Adam restarted at the switch: one update since (optim.restart).
    assert int(keras.ops.convert_to_numpy(trainer.model.optimizer.iterations)) == 1
    rows = _csv_rows(cfg.model_dir)
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    weights = trainer.model.loss_config
    for row in rows:
        eq7 = (
            weights.content_weight * row["content"]
            + weights.style_weight * row["style"]
            + weights.rec_weight * row["rec"]
            + weights.com_weight * row["com"]
        )
        want = weights.rec_weight * row["rec"] if row["step"] <= 2 else eq7
        assert row["loss"] == pytest.approx(want, rel=1e-4), row
    assert rows[-1]["loss"] > 2 * weights.rec_weight * rows[-1]["rec"]
    # The saved model keeps the paper's weights: the phase is not part of its config.
    saved = json.loads(Path(tmp_path, "latest.config.json").read_text())["config"]
    assert saved["style_weight"] == 2.0
    with pytest.raises(ValueError, match="rec_only_steps"):
        _config(tmp_path / "adain", model="adain", rec_only_steps=5)


def test_resume_removes_what_an_interrupted_save_left_and_still_loads(learned):
    model_dir = learned.cfg.model_dir
    stale = Path(model_dir, ".tmp-999999999-latest.weights.h5")
    stale.write_bytes(b"half of a weights file")
    other = Path(model_dir, ".tmp-notapid-latest.weights.h5")
    other.write_bytes(b"not ours")
    saved = serialization.saved_step(os.path.join(model_dir, "latest.weights.h5"))
    assert saved >= 30 and _restored_step(model_dir) == saved
    assert not stale.exists() and other.exists()
    other.unlink()


def test_non_finite_loss_stops_without_saving(tmp_path):
    # A learning rate of 1e30 blows the weights up after the first update, so
    # a later step's loss overflows.
    cfg = _config(tmp_path, steps=10, lr=1e30, checkpoint_every=1, keep_checkpoints=20)
    with pytest.raises(FloatingPointError, match=r"Non-finite loss at step (\d+): .*loss=") as err:
        train_lib.train(cfg, dataset_fn=_fixed_batch_fn(cfg))
    bad_step = int(re.search(r"step (\d+)", str(err.value)).group(1))
    assert bad_step >= 2
    assert f"latest.weights.h5 (step {bad_step - 1})" in str(err.value)
    # Every good step was saved (keep_checkpoints links), the bad one not.
    assert (tmp_path / f"ckpt-{bad_step - 1}.weights.h5").exists()
    assert not glob.glob(str(tmp_path / f"ckpt-{bad_step}.*"))
    trainer = train_lib.Trainer(dataclasses.replace(cfg, lr=1e-4))
    assert trainer.restore() == bad_step - 1
    assert all(np.all(np.isfinite(v.numpy())) for v in trainer.model.weights)


def test_max_seconds_stops_inside_the_limit_with_weights_saved(tmp_path):
    limit = 25.0
    start = time.monotonic()
    result = train_lib.train(_config(tmp_path, steps=100_000, max_seconds=limit))
    assert time.monotonic() - start < limit
    assert result.stopped_by == "max_seconds" and result.step >= 1
    assert _restored_step(tmp_path) == result.step


def _tiny_flags(model_dir, **extra):
    flags = {
        "content_source": "builtin",
        "style_source": "builtin",
        "resize_short_side": CROP,
        "crop_size": CROP,
        "batch_size": 2,
        "vgg_weights": "none",
        "seed": 0,
        "steps": 1000,
        "log_every": 1,
        "summary_every": 1000,
        "image_every": 1000,
        "model_dir": model_dir,
        **{k: ",".join(map(str, v)) if isinstance(v, tuple) else v for k, v in TINY_ARCH.items()},
        **extra,
    }
    return "".join(f"--{k}={v}\n" for k, v in flags.items())


def _start_train(tmp_path, name, **flags):
    flagfile = tmp_path / f"{name}.cfg"
    flagfile.write_text(_tiny_flags(str(tmp_path / "run"), **flags))
    log = tmp_path / f"{name}.log"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "train.py", f"--flagfile={flagfile}"],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return proc, log


def _wait_for(proc, log, pattern, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text())
        if match:
            return match
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    pytest.fail(f"{pattern!r} not seen in train.py output:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_saves_current_step_and_exits_cleanly(tmp_path, sig):
    proc, log = _start_train(tmp_path, "term", checkpoint_every=1000)
    _wait_for(proc, log, r"step 2/1000")
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    name = signal.Signals(sig).name
    step = int(_wait_for(proc, log, rf"Stopped by {name} at step (\d+)/1000").group(1))
    assert step >= 2
    assert _restored_step(tmp_path / "run") == step


def test_sigkill_leaves_a_restorable_checkpoint(tmp_path):
    proc, log = _start_train(tmp_path, "kill", checkpoint_every=1)
    _wait_for(proc, log, r"step 3/1000")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    # Saves replace the file atomically: whenever the kill came, the last
    # complete save loads.
    assert _restored_step(tmp_path / "run") >= 2


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import csv, dataclasses, json, os, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, {tests!r})
    from test_train import _config, _fixed_batch_fn
    from exchange_st.training import train_lib

    out = {{}}
    weights = None
    for name, strategy in (
        ("single", tf.distribute.get_strategy()),
        ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
    ):
        cfg = _config(os.path.join({model_dir!r}, name), steps=2)
        trainer = train_lib.Trainer(cfg, strategy, _fixed_batch_fn(cfg))
        if weights is None:
            weights = trainer.model.get_weights()
        trainer.model.set_weights(weights)
        trainer.run()
        out[name + "_replicas"] = trainer.replicas
        with open(os.path.join(cfg.model_dir, "train_log.csv")) as f:
            out[name] = [{{k: float(v) for k, v in r.items()}} for r in csv.DictReader(f)]
        # Adam's first moments are linear in the applied (all-reduced)
        # gradients: a missing division by the replica count would double them.
        out[name + "_m"] = [
            float(np.abs(v.numpy()).sum()) for v in trainer.optimizer.variables
            if "momentum" in v.path]
    print("RESULT " + json.dumps(out))
    """
)


def test_mirrored_strategy_matches_default_strategy(tmp_path):
    script = _MIRRORED_SCRIPT.format(tests=str(REPO / "tests"), model_dir=str(tmp_path))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert (out["single_replicas"], out["mirrored_replicas"]) == (1, 2)
    assert len(out["single"]) == len(out["mirrored"]) == 2
    for single, mirrored in zip(out["single"], out["mirrored"]):
        for key in ("loss", "content", "style", "rec", "com"):
            assert mirrored[key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), key
    assert len(out["single_m"]) == len(out["mirrored_m"]) > 10
    # Summation order differs, so variables with tiny gradients agree to a
    # few 1e-4 only; a wrong replica scaling would be off by a factor of 2.
    np.testing.assert_allclose(out["mirrored_m"], out["single_m"], rtol=1e-2)


def test_checkpoint_keeps_hard_linked_snapshots(tmp_path):
    model = adain_lib.AdaINNet(vgg_weights=None, upsample_filters=(8, 8, 8))
    model.build()
    model.compile(optimizer=keras.optimizers.Adam())
    checkpoint = run_control.Checkpoint(str(tmp_path), every_steps=2, keep=2)
    checkpoint.set_model(model)
    for batch in range(6):
        checkpoint.on_train_batch_end(batch)
    assert checkpoint.saved_step == 6
    names = sorted(os.listdir(tmp_path))
    assert names == [
        "ckpt-4.config.json",
        "ckpt-4.weights.h5",
        "ckpt-6.config.json",
        "ckpt-6.weights.h5",
        "latest.config.json",
        "latest.weights.h5",
    ]
    latest, snapshot = tmp_path / "latest.weights.h5", tmp_path / "ckpt-6.weights.h5"
    assert os.path.samefile(latest, snapshot)  # A hard link: no extra disk.
    # A save replaces latest (a new file); the snapshot keeps the old contents.
    checkpoint.on_train_batch_end(6)
    checkpoint.save()
    assert not os.path.samefile(latest, snapshot) and snapshot.exists()


def test_tf_data_input_is_range_checked_in_the_graph(tmp_path):
    # uint8-range floats would train silently: fit's graph has no concrete values.
    bad = tf.data.Dataset.from_tensors(
        {"content": tf.fill([2, CROP, CROP, 3], 200.0), "style": tf.fill([2, CROP, CROP, 3], 0.5)}
    ).repeat()
    with pytest.raises(tf.errors.InvalidArgumentError, match="content values must lie in"):
        train_lib.train(_config(tmp_path, steps=2), dataset_fn=lambda start_step: bad)
    assert not (tmp_path / "latest.weights.h5").exists()


def test_progress_line_projects_the_step_reached_at_max_seconds(monkeypatch, caplog):
    model = keras.Sequential([keras.layers.Dense(1)])
    model.build((None, 2))
    model.compile(optimizer=keras.optimizers.Adam())
    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock.now)
    # Started at t=90 with 100 s allowed: the limit falls at t=190.
    progress = callbacks.ProgressLogger(10_000, start_step=0, max_seconds=100.0, start_time=90.0)
    progress.set_model(model)
    progress.on_train_batch_end(0)  # The compiling step: the rate counts from here.
    for batch in range(1, 21):
        clock.now += 0.5  # 2 steps/s.
        progress.on_train_batch_end(batch)
    # On absl's logger itself: after TensorFlow has written a SavedModel (an
    # earlier test module) its level no longer lets INFO reach the root.
    caplog.set_level(logging.INFO, logger="absl")
    progress.on_epoch_end(0, {})
    # Step 21 at t=110, 80 s left at 2 steps/s.
    assert "2 steps/s" in caplog.text and "~step 181 at max_seconds" in caplog.text


def test_with_options_routes_each_key_to_its_config():
    cfg = _config("/tmp/unused")
    out = train_config.with_options(
        cfg, {"fusion_mode": "adain", "exchange_targets": "detached", "style_statistics": True}
    )
    assert out.fusion_mode == "adain" and cfg.fusion_mode == "ours"
    assert out.loss.exchange_targets == "detached"
    assert out.model_config == {"style_statistics": True}
    with pytest.raises(ValueError, match="rec_only_steps must be 0"):
        train_config.with_options(cfg, {"model": "adain", "rec_only_steps": 5})


def test_a_resumed_run_follows_the_uninterrupted_trajectory(tmp_path):
    """On a fixed batch, 12 steps at once and 10 + a resumed 2 give the same weights.

    The warm-up (11 steps) crosses the resume: the restored step count, Adam's
    moments and the schedule must all carry over.
    """
    kwargs = dict(lr=3e-4, warmup_steps=11, log_every=2)
    straight = _config(tmp_path / "straight", steps=12, **kwargs)
    train_lib.train(straight, dataset_fn=_fixed_batch_fn(straight))
    first = _config(tmp_path / "resumed", steps=10, **kwargs)
    train_lib.train(first, dataset_fn=_fixed_batch_fn(first))
    second = dataclasses.replace(first, steps=12)
    result = train_lib.train(second, dataset_fn=_fixed_batch_fn(second))
    assert (result.start_step, result.step) == (10, 12)
    a = train_lib.Trainer(straight)
    b = train_lib.Trainer(second)
    assert a.restore() == b.restore() == 12
    for x, y in zip(a.model.weights, b.model.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-7)
    for x, y in zip(a.optimizer.variables, b.optimizer.variables):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-9)


def test_a_resumed_pipeline_draws_new_crops_reproducibly(tmp_path):
    """The configured input is reseeded by the start step: not a replay of step 1's batch."""
    trainer = train_lib.Trainer(_config(tmp_path, steps=1))

    def first_batch(start_step):
        return next(iter(trainer.dataset(start_step)))["content"].numpy()

    fresh, resumed = first_batch(0), first_batch(30)
    assert not np.allclose(fresh, resumed)
    np.testing.assert_array_equal(resumed, first_batch(30))


@pytest.mark.parametrize(
    "precision,jit",
    [("mixed_bfloat16", False), ("mixed_float16", False), ("none", True)],
    ids=["bf16", "fp16", "xla"],
)
def test_mixed_precision_and_xla_train_resume_and_load_in_float32(tmp_path, precision, jit):
    """Two steps, a resumed third, and the weights back in a float32 model."""
    cfg = _config(tmp_path, steps=2, mixed_precision=precision, jit_compile=jit)
    train_lib.train(cfg)
    result = train_lib.train(dataclasses.replace(cfg, steps=3))
    assert (result.start_step, result.step) == (2, 3)
    assert np.isfinite(result.losses["loss"])
    model = loader.load(str(tmp_path))  # the global policy is float32 here
    assert model.compute_dtype == "float32"
    assert all(v.dtype == "float32" for v in model.weights)
    keras.config.set_dtype_policy("float32" if precision == "none" else precision)
    try:
        mixed = loader.load(str(tmp_path))
    finally:
        keras.config.set_dtype_policy("float32")
    # Mixed precision keeps float32 variables: the same numbers in both models.
    for x, y in zip(model.weights, mixed.weights):
        np.testing.assert_array_equal(x.numpy(), keras.ops.convert_to_numpy(y))
    content = np.random.default_rng(0).uniform(size=(1, CROP, CROP, 3)).astype(np.float32)
    # The float32 model computes what the mixed-precision one did, to its precision.
    want = np.asarray(mixed.stylize(content, content[:, ::-1]), np.float32)
    got = model.stylize(content, content[:, ::-1]).numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol={"none": 1e-5}.get(precision, 0.05))


def test_save_every_seconds_saves_between_checkpoint_steps(tmp_path):
    timed = _config(tmp_path / "timed", steps=3, save_every_seconds=1e-9, keep_checkpoints=10)
    train_lib.train(timed)
    untimed = _config(tmp_path / "untimed", steps=3, keep_checkpoints=10)
    train_lib.train(untimed)

    def snapshots(model_dir):
        return sorted(p.name for p in Path(model_dir).glob("ckpt-*.weights.h5"))

    # checkpoint_every=1000: only the time-based saves write steps 1 and 2.
    assert snapshots(timed.model_dir) == [f"ckpt-{i}.weights.h5" for i in (1, 2, 3)]
    assert snapshots(untimed.model_dir) == ["ckpt-3.weights.h5"]


def test_eq7_lr_is_the_rate_after_the_switch_and_after_a_resume(tmp_path):
    cfg = _config(tmp_path, steps=4, rec_only_steps=2, lr=1e-3, eq7_lr=1e-4, warmup_steps=1)
    train_lib.train(cfg, dataset_fn=_fixed_batch_fn(cfg))
    train_lib.train(dataclasses.replace(cfg, steps=5), dataset_fn=_fixed_batch_fn(cfg))
    rates = [r["learning_rate"] for r in _csv_rows(cfg.model_dir)]
    assert rates == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-4])
    with pytest.raises(ValueError, match="eq7_lr"):
        _config(tmp_path, eq7_lr=0.0)
