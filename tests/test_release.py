"""The pretrained-model release: int8 round trip, manifest checks, loading on TF and JAX."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import exchange_st

from exchange_st.baselines.adain import AdaINNet
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.saving import loader, quantization, release

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-4


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    content = rng.uniform(size=(1, 40, 52, 3)).astype(np.float32)
    return content, rng.uniform(size=(1, 36, 30, 3)).astype(np.float32)


def test_int8_round_trip_is_within_half_a_step_per_output_channel():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 5, 7)).astype(np.float32) * rng.uniform(0.5, 1.5, size=7)
    w[..., 2] = 0.0  # A zero-initialised channel.
    w[0, 0, 0, 4] = 40.0  # An outlier widens only its own channel's step.
    q, scale = quantization.quantize(w)
    assert q.dtype == np.int8 and q.shape == w.shape and scale.shape == (7,)
    assert np.abs(q.astype(int)).max() <= 127
    error = np.abs(quantization.dequantize(q, scale) - w)
    step = np.max(np.abs(w.reshape(-1, 7)), axis=0) / 127.0
    assert np.all(error <= step / 2 * (1 + 1e-6) + 1e-12)
    assert np.all(quantization.dequantize(q, scale)[..., 2] == 0.0)
    # Per-channel: the outlier's channel is coarse, the others stay fine.
    others = [c for c in range(7) if c not in (2, 4)]
    assert error[..., others].max() < error[..., 4].max() / 3


def test_release_holds_the_s2c_path_in_checked_shards(tiny_release, tmp_path):
    model = tiny_release["model"]
    manifest = release.save(model, str(tmp_path), max_shard_bytes=2_500_000)
    assert len(manifest["shards"]) > 1
    for shard in manifest["shards"]:
        size = os.path.getsize(tmp_path / shard["file"])
        assert size == shard["bytes"] <= 2_500_000 and len(shard["sha256"]) == 64
    names = {t["name"] for t in manifest["tensors"]}
    assert (
        "decoder_c/upsampler/to_rgb/kernel" in names
        and "exchange_block1/rmp_s/w4_gate/bias" in names
    )
    assert not any(n.startswith(("decoder_s", "fc_rec", "encoder")) for n in names)
    kinds = {t["name"]: t["dtype"] for t in manifest["tensors"]}
    assert kinds["compressor/fc/kernel"] == "int8" and kinds["compressor/fc/bias"] == "float32"
    assert manifest["model"]["config"]["code_dim"] == 16
    assert manifest["parameters"] == sum(
        int(np.prod(v.shape)) for v in quantization.inference_variables(model).values()
    )
    # The VGG travels as its own file: a random one does not survive float16.
    assert manifest["vgg"]["file"] == "vgg19_to_relu4_1_float32.h5"
    loaded = release.load(str(tmp_path))
    content, style = _pair()
    with quantization.dequantized_weights(model):
        want = keras.ops.convert_to_numpy(model.stylize(content, style, 0.7))
    got = keras.ops.convert_to_numpy(loaded.stylize(content, style, 0.7))
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The weights are the model's again once the block ends.
    assert np.abs(keras.ops.convert_to_numpy(model.stylize(content, style, 0.7)) - want).max() > 0


def test_float16_small_kernels_cut_the_quantisation_error(tiny_release, tmp_path):
    model = tiny_release["model"]
    pairs = [(c[0], s[0]) for c, s in (_pair(3), _pair(4))]
    all_int8 = quantization.quantization_error(model, pairs)
    mixed = quantization.quantization_error(model, pairs, int8_min_params=1_000_000)
    # A random network amplified 200x at its output is no test of the target
    # (a trained one is: tools/make_release.py); the ordering holds for any.
    assert 0 < mixed["mean_abs"] < all_int8["mean_abs"] / 2
    assert mixed["max_abs"] < all_int8["max_abs"]
    manifest = release.save(model, str(tmp_path), int8_min_params=1_000_000)
    kinds = {t["name"]: t["dtype"] for t in manifest["tensors"]}
    assert kinds["decoder_c/pre_res0/conv1/kernel"] == "int8"
    assert kinds["decoder_c/upsampler/to_rgb/kernel"] == "float16"
    loaded = release.load(str(tmp_path))
    content, style = _pair(3)
    with quantization.dequantized_weights(model, int8_min_params=1_000_000):
        want = keras.ops.convert_to_numpy(model.stylize(content, style))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.stylize(content, style)), want, atol=1e-5
    )


def test_a_changed_shard_is_named_in_the_error(tiny_release, tmp_path):
    broken = tmp_path / "efanet"
    shutil.copytree(tiny_release["path"], broken)
    with open(broken / "manifest.json") as f:
        shard = json.load(f)["shards"][0]["file"]
    with open(broken / shard, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ValueError, match=f"{shard} is corrupt.*sha256"):
        release.load(str(broken))
    os.remove(broken / shard)
    with pytest.raises(FileNotFoundError, match=f"{shard} is missing"):
        release.load(str(broken))


def test_a_release_written_before_the_package_moved_still_loads(tiny_release, tmp_path):
    """Releases name their format and model class, not where the code lived then."""
    old = tmp_path / "efanet"
    shutil.copytree(tiny_release["path"], old)
    with open(old / "manifest.json") as f:
        manifest = json.load(f)
    # What the first GPU release (../shared/runs/efanet_paper_gpu/release) says.
    assert manifest["format"] == "exchange_st.release"
    manifest["model"]["module"] = "exchange_st.model"
    with open(old / "manifest.json", "w") as f:
        json.dump(manifest, f)
    content, style = _pair(1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(release.load(str(old)).stylize(content, style)),
        keras.ops.convert_to_numpy(release.load(tiny_release["path"]).stylize(content, style)),
        atol=1e-6,
    )


def test_a_missing_release_says_where_it_looked_and_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.delenv(release.ENV_VAR, raising=False)
    monkeypatch.setattr(release, "DEFAULT_DIR", str(tmp_path / "pretrained" / "efanet"))
    with pytest.raises(
        release.NoPretrainedModel,
        match="No pretrained EFANet at .*pretrained.efanet .no manifest.json.",
    ):
        exchange_st.from_pretrained()
    with pytest.raises(release.NoPretrainedModel, match="or pass --checkpoint_dir instead"):
        release.load(instead="--checkpoint_dir")
    monkeypatch.setenv(release.ENV_VAR, str(tmp_path / "elsewhere"))
    with pytest.raises(
        release.NoPretrainedModel, match=f"No release at .*elsewhere.*{release.ENV_VAR}"
    ):
        exchange_st.from_pretrained()
    # A path goes through the one loader, which says what it found there.
    with pytest.raises(FileNotFoundError, match="holds no model: the directory is empty"):
        exchange_st.from_pretrained(str(tmp_path))


def test_from_pretrained_follows_the_variable_and_refuses_training(tiny_release, monkeypatch):
    monkeypatch.setenv(release.ENV_VAR, tiny_release["path"])
    model = exchange_st.from_pretrained()
    assert model.built and model.inference_only
    with pytest.raises(RuntimeError, match="inference-only release .*train from a train.py"):
        model.compile(optimizer="adam")
    # The training loader accepts a release directory too (stylize, export, eval).
    same = loader.load(tiny_release["path"], expect=ExchangeStyleTransfer)
    content, style = _pair(1)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(same.stylize(content, style)),
        keras.ops.convert_to_numpy(model.stylize(content, style)),
    )


# Runs with KERAS_BACKEND=jax and TensorFlow hidden: argv = (output dir).
_JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import exchange_st

    out_dir = sys.argv[1]
    model = exchange_st.from_pretrained()
    inputs = np.load(out_dir + "/inputs.npz")
    out = model.stylize(inputs["content"], inputs["style"], 0.6)
    np.save(out_dir + "/jax.npy", np.asarray(out))
    assert "tensorflow" not in sys.modules or sys.modules["tensorflow"] is None
    """
)


def test_from_pretrained_on_jax_matches_tensorflow(tiny_release, tmp_path):
    pytest.importorskip("jax")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("compares a JAX subprocess with this TensorFlow process")
    shim = tmp_path / "no_tf"
    shim.mkdir()
    # As on a JAX-only machine: `import tensorflow` raises ImportError.
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['tensorflow'] = None\n")
    content, style = _pair(2)
    np.savez(tmp_path / "inputs.npz", content=content, style=style)
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.pathsep.join([str(shim), REPO]),
        **{release.ENV_VAR: tiny_release["path"]},
    )
    proc = subprocess.run(
        [sys.executable, "-c", _JAX_SCRIPT, str(tmp_path)],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    want = release.load(tiny_release["path"]).stylize(content, style, 0.6)
    got = np.load(tmp_path / "jax.npy")
    assert got.std() > 0.05  # Real signal, not a flat image.
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(want), atol=TOL)


def test_adain_release_holds_its_decoder_in_float16(tmp_path):
    """The sweep ships AdaIN's trained decoder in the same checked format."""
    keras.utils.set_random_seed(0)
    model = AdaINNet(vgg_weights=None, upsample_filters=(16, 8, 8))
    model.build()
    path = tmp_path / "adain"
    manifest = release.save(model, str(path), int8_min_params=10**12)
    assert [s["file"] for s in manifest["shards"]] == ["adain-00001-of-00001.safetensors"]
    assert {t["name"].split("/")[0] for t in manifest["tensors"]} == {"decoder"}
    kernels = [t for t in manifest["tensors"] if t["name"].endswith("kernel")]
    assert kernels and all(t["dtype"] == "float16" for t in kernels)
    loaded = loader.load(str(path), expect=AdaINNet)
    assert isinstance(loaded, AdaINNet) and not getattr(loaded, "inference_only", None)
    # Its model card describes AdaIN, not the exchange model.
    card = (path / "README.md").read_text()
    assert "exchange-st-stylize --model=adain" in card and "every kernel float16" in card
    assert "Feature Exchange blocks" not in card and "model_class: AdaINNet" in card
    image = np.random.default_rng(0).uniform(size=(1, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model.stylize(image, image[:, ::-1]))
    got = keras.ops.convert_to_numpy(loaded.stylize(image, image[:, ::-1]))
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_choose_policy_takes_the_first_within_the_target_else_the_last_tried(monkeypatch):
    """The fallback order of tools/make_release.py, on errors given per policy."""
    errors = {
        0: (3 / 255, 20 / 255),
        1_000_000: (0.9 / 255, 9 / 255),
        2_000_000: (0.5 / 255, 7 / 255),
    }
    measured_policies = []

    def fake_error(model, pairs, policy, reference):
        measured_policies.append(policy)
        mean, worst = errors[policy]
        return {"mean_abs": mean, "max_abs": worst, "per_pair": []}

    monkeypatch.setattr(quantization, "quantization_error", fake_error)
    reports = []
    chosen, measured = quantization.choose_policy(
        None,
        [],
        [0, 1_000_000, 2_000_000, 3_000_000],
        reference=[],
        report=lambda *a: reports.append(a),
    )
    # 0 misses the mean, 1M the max (8/255); 2M is within, and 3M is never measured.
    assert chosen == 2_000_000 and measured_policies == [0, 1_000_000, 2_000_000]
    assert [measured[k]["within_target"] for k in ("0", "1000000", "2000000")] == [
        False,
        False,
        True,
    ]
    assert len(reports) == 3
    chosen, measured = quantization.choose_policy(None, [], [0, 1_000_000], reference=[])
    assert chosen == 1_000_000 and not any(m["within_target"] for m in measured.values())


@pytest.fixture(scope="module")
def trained_tiny_run(tmp_path_factory):
    """A tiny EFANet trained 40 steps on Eq. 5 (its decoder reconstructs: trained-like weights)."""
    from conftest import tiny_train_config

    from exchange_st.data import image_io
    from exchange_st.training import train_lib

    root = tmp_path_factory.mktemp("trained")
    config = tiny_train_config(
        root / "run", steps=40, rec_only_steps=40, lr=1e-3, warmup_steps=5, log_every=10
    )
    train_lib.train(config)
    rng = np.random.default_rng(1)
    for name in ("content", "style"):
        for i in range(2):
            image_io.save_image(root / name / f"{i}.png", rng.uniform(size=(40, 36, 3)))
    return root


def test_make_release_of_a_trained_model_is_int8_within_the_error_budget(
    trained_tiny_run, tmp_path
):
    root = trained_tiny_run
    proc = subprocess.run(
        [sys.executable, "-m", "tools.make_release", f"--checkpoint_dir={root / 'run'}"]
        + [f"--content={root / 'content'}", f"--style={root / 'style'}", "--pairs=2", "--size=32"]
        + [f"--output_dir={tmp_path / 'release'}", "--int8_min_params=0,1000000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = release.read_manifest(tmp_path / "release")
    # All-int8 is within the budget: it is chosen, and the next policy never measured.
    assert manifest["quantization"]["int8_min_params"] == 0
    record = manifest["provenance"]["quantization_error"]
    assert list(record["by_int8_min_params"]) == ["0"] and record["pairs"] == 2
    error = record["by_int8_min_params"]["0"]
    assert error["within_target"] and quantization.within_target(error)
    assert 0 < error["mean_abs"] < 1 / 255 and error["max_abs"] < 8 / 255
    assert manifest["provenance"]["checkpoint_step"] == 40
    assert [p["end_step"] for p in manifest["provenance"]["history"]] == [40]
    assert all(t["dtype"] == "int8" for t in manifest["tensors"] if t["name"].endswith("kernel"))


def _passing_scores(**changes):
    scores = {
        "v_r_spread": 0.2,
        "style_move": 0.1,
        "content_corr": 0.6,
        "chroma_follow": {"slope": 0.5, "r": 0.9},
        "table1_style": 10.0,
        "content_row_style": 20.0,
        "table1_total": 12.0,
    }
    scores.update(changes)
    return scores


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"v_r_spread": 0.04}, "v_r_s spread"),
        ({"style_move": 0.05}, "style move"),
        ({"content_corr": 0.39}, "content correlation"),
        ({"chroma_follow": {"slope": 0.29, "r": 0.9}}, "chroma follow"),
        ({"chroma_follow": {"slope": 0.5, "r": 0.69}}, "chroma follow"),
        ({"table1_style": 20.0}, "not below the content row"),
        ({"chroma_follow": None}, "chroma follow"),
    ],
)
def test_release_rule_names_each_failing_check(change, reason):
    from exchange_st.evaluation import release_rule

    assert release_rule.verdict(_passing_scores()) == (True, [])
    passes, failures = release_rule.verdict(_passing_scores(**change))
    assert not passes and len(failures) == 1 and reason in failures[0]


def test_a_release_is_replaced_only_by_a_passing_model_with_a_lower_total():
    from exchange_st.evaluation import release_rule

    assert release_rule.replaces(_passing_scores(), None)
    assert release_rule.replaces(_passing_scores(table1_total=11.0), _passing_scores())
    assert not release_rule.replaces(_passing_scores(table1_total=13.0), _passing_scores())
    assert not release_rule.replaces(_passing_scores(v_r_spread=0.0), None)


def test_release_check_measures_every_score_of_the_rule(trained_tiny_run, tmp_path):
    from exchange_st.data import image_io

    root = trained_tiny_run
    rng = np.random.default_rng(2)
    for name in ("la_muse", "sketch", "third"):
        image_io.save_image(tmp_path / "styles" / f"{name}.png", rng.uniform(size=(40, 36, 3)))
    proc = subprocess.run(
        [sys.executable, "-m", "tools.release_check", f"--checkpoint={root / 'run'}"]
        + [f"--content_dir={root / 'content'}", f"--style_dir={tmp_path / 'styles'}"]
        + ["--vgg_weights=none", "--rule_size=32", "--table1_size=32", "--dependence_size=32"]
        + [f"--output={tmp_path / 'check' / 'check.json'}", f"--grid={tmp_path / 'grid.png'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "check" / "check.json") as f:
        check = json.load(f)
    scores = check["scores"]
    for key in ("v_r_spread", "style_move", "content_corr", "table1_style", "content_row_style"):
        assert np.isfinite(scores[key]), key
    assert set(scores["chroma_follow"]) == {"r", "slope"}
    assert scores["table1_pairs"] == 2 * 3 and check["step"] == 40
    # A 40-step tiny model on random images does not stylize: the verdict says why.
    assert check["passes"] == (not check["failures"]) and check["failures"]
    assert ("PASSES" if check["passes"] else "FAILS: ") in proc.stdout
    assert image_io.load_image(tmp_path / "grid.png").shape[1] > 4 * 32


def test_any_safetensors_reader_gets_the_stored_weights(tiny_release, tmp_path):
    """The shards are plain safetensors: kernel q and `<name>.scale` give w = q * scale."""
    import safetensors.numpy

    model = tiny_release["model"]
    manifest = release.save(model, str(tmp_path), max_shard_bytes=2_500_000)
    stored = {}
    for shard in manifest["shards"]:
        assert shard["file"].endswith(".safetensors")
        stored.update(safetensors.numpy.load_file(str(tmp_path / shard["file"])))
    variables = quantization.inference_variables(model)
    for t in manifest["tensors"]:
        want = keras.ops.convert_to_numpy(variables[t["name"]])
        got = stored[t["name"]]
        assert str(got.dtype) == t["dtype"]
        if t["dtype"] == "int8":
            got = got.astype(np.float32) * stored[t["name"] + ".scale"]
            step = np.abs(want).reshape(-1, want.shape[-1]).max(axis=0) / 127
            assert np.all(np.abs(got - want) <= step / 2 + 1e-7)
        else:
            np.testing.assert_array_equal(got, want.astype(t["dtype"]))


def _save_v1(model, directory):
    """A release in the first layout (raw .bin shard, byte offsets in the manifest), as
    releases written before the safetensors shards are."""
    import hashlib

    manifest = release.save(model, str(directory))  # the VGG file and the model config
    for shard in manifest["shards"]:
        os.remove(directory / shard["file"])
    blob, tensors = bytearray(), []
    variables = quantization.inference_variables(model)
    for t in manifest["tensors"]:
        w = keras.ops.convert_to_numpy(variables[t["name"]]).astype(np.float32)
        entry = {"name": t["name"], "shape": t["shape"], "dtype": t["dtype"]}
        if t["dtype"] == "int8":
            q, scale = quantization.quantize(w)
            parts = {"data": q, "scale": scale}
        else:
            parts = {"data": w.astype(t["dtype"])}
        for key, array in parts.items():
            data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
            entry[key] = {"shard": 0, "offset": len(blob), "bytes": len(data)}
            blob += data
        tensors.append(entry)
    name = "efanet-00001-of-00001.bin"
    (directory / name).write_bytes(bytes(blob))
    sha = hashlib.sha256(bytes(blob)).hexdigest()
    manifest.update(
        format_version=1,
        tensors=tensors,
        shards=[{"file": name, "bytes": len(blob), "sha256": sha}],
    )
    (directory / release.MANIFEST).write_text(json.dumps(manifest))


def test_a_release_of_the_first_layout_still_loads(tiny_release, tmp_path):
    model = tiny_release["model"]
    _save_v1(model, tmp_path)
    assert release.read_manifest(tmp_path)["format_version"] == 1
    loaded = release.load(str(tmp_path))
    current = release.load(tiny_release["path"])
    content, style = _pair()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.stylize(content, style)),
        keras.ops.convert_to_numpy(current.stylize(content, style)),
        atol=1e-6,
    )
    # A changed byte of the old layout is caught as in the new one.
    data = bytearray((tmp_path / "efanet-00001-of-00001.bin").read_bytes())
    data[100] ^= 1
    (tmp_path / "efanet-00001-of-00001.bin").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        release.load(str(tmp_path))


def test_each_release_has_a_model_card_from_its_manifest(tmp_path):
    from conftest import small_efanet

    from exchange_st.saving import model_card

    model = small_efanet(fusion_mode="adain", code_normalization="l2")
    history = [
        {
            "start_step": 0,
            "end_step": 500,
            "hours": 0.5,
            "crop_size": 128,
            "precision": "mixed_bfloat16",
            "machine": "CPU, 2 cores",
            "batch_size": 4,
        },
        {
            "start_step": 500,
            "end_step": 900,
            "hours": None,
            "crop_size": 256,
            "precision": "float32",
            "machine": "NVIDIA H200 (gpu, JAX)",
            "batch_size": 4,
        },
    ]
    provenance = {
        "checkpoint_step": 900,
        "history": history,
        "training": {"config": {"rec_only_steps": 500, "eq7_lr": 2e-5}},
        "scores": _passing_scores(),
        "passes": True,
        "rule": "the rule",
    }
    manifest = release.save(model, str(tmp_path), provenance=provenance)
    text = (tmp_path / model_card.CARD_FILE).read_text()
    # YAML metadata first: the keys a model hub reads.
    head = text.split("---\n")[1]
    meta = dict(line.split(": ", 1) for line in head.strip().splitlines())
    assert meta["library_name"] == "keras" and meta["license"] == "other"
    assert meta["training_steps"] == "900" and meta["parameters"] == str(manifest["parameters"])
    # The departures from the paper, the history, the scores and the licenses.
    assert "the AdaIN fusion of the paper's own Fig. 8 ablation" in text
    assert "unit-norm style codes" in text and "Eq. 5 alone for the first 500 steps" in text
    assert "Adam at 2e-05 once Eq. 7 trains" in text
    assert "| 500-900 | 256 px | float32 | NVIDIA H200 (gpu, JAX) | ? |" in text
    assert "| chroma follow over 20 styles (slope, r) | 0.50, 0.90 |" in text
    assert "passes the project's release rule" in text and "CC BY 4.0" in text
    assert model_card.departures(release.read_manifest(tmp_path)) == model_card.departures(manifest)
    # A release without a check says so instead of inventing numbers.
    bare = release.save(small_efanet(), str(tmp_path / "bare"))
    assert "No release check is recorded" in model_card.render(bare)
    assert "none: the paper's configuration as printed" in model_card.render(bare)


def test_release_check_scores_are_recorded_in_the_manifest_and_card(tiny_release, tmp_path):
    shutil.copytree(tiny_release["path"], tmp_path / "efanet")
    path = tmp_path / "efanet"
    before = release.read_manifest(path)
    after = release.add_provenance(path, {"scores": _passing_scores(), "passes": True, "rule": "r"})
    assert after["provenance"]["scores"]["table1_total"] == 12.0
    assert after["shards"] == before["shards"] and after["tensors"] == before["tensors"]
    assert release.read_manifest(path) == after
    card = (path / "README.md").read_text()
    assert "| chroma follow over 20 styles (slope, r) | 0.50, 0.90 |" in card
    assert card.startswith("---\n") and "# efanet:" in card
    release.load(str(path))  # still loads: every checksum holds
    # Run folders under this user's home travel as ~/..., other paths as written.
    home = os.path.expanduser("~")
    moved = release.add_provenance(
        path, {"run": os.path.join(home, "runs", "x"), "runs": ["/data/r", home + "2/y"]}
    )["provenance"]
    assert moved["run"] == os.path.join("~", "runs", "x")
    assert moved["runs"] == ["/data/r", home + "2/y"]
