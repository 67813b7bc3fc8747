"""The GPU sweep's rule and table (tools/sweep_summary.py), on made-up variants."""

import json
import tarfile

import pytest

from tools import sweep_summary


def _variant(name, model="ExchangeStyleTransfer", total=50.0, spread=0.2, move=0.1, corr=0.5):
    evaluation = {
        "model": model,
        "table1": {"content": 5.0, "style": total - 5.0, "total": total},
        "style_move": move,
        "content_corr": corr,
        "step_flops": 4.81e12,
    }
    if model == "ExchangeStyleTransfer":
        evaluation["v_r_spread"] = spread
    return {"name": name, "status": "trained (train.py exit 0)", "eval": evaluation}


def test_rule_releases_the_lowest_total_among_the_efanets_that_stylize():
    variants = [
        _variant("blind", total=20.0, spread=0.0035),  # lowest total, ignores the style
        _variant("flat", total=25.0, move=0.01),
        _variant("no_content", total=26.0, corr=0.05),
        _variant("good", total=40.0),
        _variant("better", total=35.0),
        _variant("adain", model="AdaINNet", total=30.0),
        {"name": "broken", "status": "failed at start (smoke exit 1)", "eval": None},
    ]
    assert sweep_summary.choose(variants) == {"efanet": "better", "adain": "adain"}
    assert sweep_summary.verdict(variants[0]) == (False, "v_r_s spread 0.35% < 5%")
    assert "style move 0.010 < 0.06" in sweep_summary.verdict(variants[1])[1]
    assert "content corr 0.05 < 0.2" in sweep_summary.verdict(variants[2])[1]
    assert sweep_summary.verdict(variants[-1]) == (False, "failed at start (smoke exit 1)")
    # AdaIN has no v_r: only the picture checks apply to it.
    assert sweep_summary.verdict(variants[5]) == (True, "passes")
    assert sweep_summary.choose(variants[:3] + variants[-1:]) == {"efanet": None, "adain": None}


def test_summary_of_runs_on_disk_marks_the_release_and_archives_what_exists(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    (runs / "efanet").mkdir(parents=True)
    (runs / "efanet" / "train_log.csv").write_text(
        "step,content,style,rec,com,steps_per_sec\n100,9,40,0.6,1,2.0\n200,8,30,0.5,1,25.0\n"
        "300,8,28,0.5,1,24.0\n"
    )
    (runs / "efanet.eval.json").write_text(
        json.dumps(dict(_variant("efanet")["eval"], hue_headroom=0.113))
    )
    (runs / "efanet.status").write_text("trained (train.py exit 0)")
    (runs / "slow.status").write_text("failed at start (smoke exit 1)")
    variants = tmp_path / "sweep.txt"
    variants.write_text("# comment\nefanet --flagfile=configs/gpu_jax.cfg\n\nslow --bogus  # x\n")
    assert sweep_summary.read_variants(str(variants)) == [
        ("efanet", "--flagfile=configs/gpu_jax.cfg"),
        ("slow", "--bogus"),
    ]
    v = sweep_summary.collect("efanet", str(runs), 790.0)
    # The median rate of the steady rows (the first holds the compile).
    assert v["step"] == 300 and v["steps_per_sec"] == pytest.approx(24.5)
    assert v["mfu"] == pytest.approx(24.5 * 4.81 / 790)
    slow = sweep_summary.collect("slow", str(runs), 790.0)
    text = sweep_summary.table([v, slow], {"efanet": "efanet", "adain": None})
    assert "**released**" in text and "failed at start" in text
    assert "| hue headroom |" in text and "| 0.11 | **released** |" in text
    out.mkdir()
    sweep_summary.archive([v, slow], str(runs), str(out / "sweep.tar.gz"))
    with tarfile.open(out / "sweep.tar.gz") as tar:
        names = tar.getnames()
    assert "sweep/efanet/train_log.csv" in names and "sweep/efanet.eval.json" in names
