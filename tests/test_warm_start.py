"""Tests for exchange_st.training.warm_start and history: a run continued from a release."""

import json

import keras
import numpy as np
import pytest
from conftest import tiny_train_config

from exchange_st.saving import release
from exchange_st.training import history, train_lib, warm_start

CROP = 32


def _config(model_dir, steps, **overrides):
    return tiny_train_config(model_dir, steps, **{"warmup_steps": 2, **overrides})


def _numpy(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """3 steps trained, and their release (weights, step and history in the manifest)."""
    root = tmp_path_factory.mktemp("first")
    result = train_lib.train(_config(root / "run", steps=3))
    assert result.step == 3
    trainer = train_lib.Trainer(_config(root / "run", steps=3))
    trainer.restore()
    provenance = {"checkpoint_step": 3, "history": history.read(root / "run")}
    release.save(trainer.model, str(root / "release"), provenance=provenance)
    return {"run": root / "run", "release": root / "release", "model": trainer.model}


def test_a_run_records_its_phases(first_run):
    phases = history.read(first_run["run"])
    assert len(phases) == 1
    phase = phases[0]
    assert (phase["start_step"], phase["end_step"], phase["crop_size"]) == (0, 3, CROP)
    assert phase["precision"] == "float32" and phase["backend"] == keras.backend.backend()
    assert phase["hours"] > 0 and phase["machine"]


def test_continuing_a_release_keeps_its_step_changes_its_weights_and_its_history(
    first_run, tmp_path
):
    model_dir = tmp_path / "continued"
    cfg = _config(model_dir, steps=5, init_from=str(first_run["release"]))
    trainer = train_lib.Trainer(cfg)
    assert trainer.restore() == 3
    model, released = trainer.model, first_run["model"]
    # The inference path is the release's (int8 kernels: within a quantisation step).
    for a, b in zip(_numpy(model.decoder_c.weights), _numpy(released.decoder_c.weights)):
        np.testing.assert_allclose(a, b, atol=np.abs(b).max() / 127 + 1e-7)
    # decoder_s, which the release does not store, starts as a copy of decoder_c.
    for a, b in zip(_numpy(model.decoder_s.weights), _numpy(model.decoder_c.weights)):
        np.testing.assert_array_equal(a, b)
    # Adam starts fresh: no step taken, no moments.
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0
    before = _numpy(model.trainable_variables)

    result = train_lib.train(cfg)
    assert (result.start_step, result.step) == (3, 5)
    trained = train_lib.Trainer(_config(model_dir, steps=5))
    assert trained.restore() == 5
    after = _numpy(trained.model.trainable_variables)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    phases = history.read(model_dir)
    assert [(p["start_step"], p["end_step"]) for p in phases] == [(0, 3), (3, 5)]
    assert phases[1]["init_from"] == str(first_run["release"])
    assert len(history.summarize(phases)) == 1  # same settings, consecutive steps
    assert "steps 0-5: 32 px crops" in history.format_summary(phases)


def test_fresh_training_parts_and_a_weights_file(first_run, tmp_path):
    fresh = train_lib.Trainer(
        _config(
            tmp_path / "a",
            steps=5,
            init_from=str(first_run["release"]),
            init_training_parts="fresh",
        )
    )
    fresh.restore()
    differs = [
        not np.array_equal(a, b)
        for a, b in zip(
            _numpy(fresh.model.decoder_s.weights), _numpy(fresh.model.decoder_c.weights)
        )
    ]
    assert any(differs)
    # A weights file carries every variable, decoder_s included, exactly.
    weights = first_run["run"] / "latest.weights.h5"
    trainer = train_lib.Trainer(_config(tmp_path / "b", steps=5, init_from=str(weights)))
    assert trainer.restore() == 3
    for a, b in zip(_numpy(trainer.model.weights), _numpy(first_run["model"].weights)):
        np.testing.assert_array_equal(a, b)
    assert [p["end_step"] for p in trainer.phases] == [3, 3]


def test_another_architecture_is_refused_by_name(first_run, tmp_path):
    cfg = _config(tmp_path / "c", steps=5, init_from=str(first_run["release"]), code_dim=8)
    with pytest.raises(ValueError, match="code_dim: saved 16 vs this run's 8"):
        train_lib.Trainer(cfg).restore()
    with pytest.raises(FileNotFoundError, match="holds no model"):
        warm_start.load_into(train_lib.Trainer(_config(tmp_path / "d", 1)).model, tmp_path)


def test_a_run_with_a_checkpoint_resumes_it_and_ignores_init_from(first_run, tmp_path):
    cfg = _config(first_run["run"], steps=3, init_from=str(tmp_path / "nothing_here"))
    assert train_lib.Trainer(cfg).restore() == 3
    saved = json.loads((first_run["run"] / history.HISTORY_FILE).read_text())
    assert saved[0]["end_step"] == 3


def test_a_history_is_cut_at_the_step_a_release_was_saved():
    phases = [
        {"start_step": 0, "end_step": 500, "hours": 1.0},
        {"start_step": 500, "end_step": 1000, "hours": 2.0},
        {"start_step": 1000, "end_step": 1200, "hours": 0.5},
    ]
    cut = history.until(phases, 750)
    assert [(p["start_step"], p["end_step"]) for p in cut] == [(0, 500), (500, 750)]
    assert cut[1]["hours"] == pytest.approx(1.0) and phases[1]["end_step"] == 1000
    assert history.until(phases, 1200) == phases
