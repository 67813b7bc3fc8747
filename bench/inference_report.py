"""The text report of `bench.inference`: latency lines, the ratio and efficiency verdicts, op groups."""

from __future__ import annotations

from bench import common, op_groups

# The paper's Table 2: seconds per stylization on a Titan Xp.
PAPER_TABLE2_S = {
    "efanet": {256: 0.031, 512: 0.066, 1024: 0.21},
    "adain": {256: 0.014, 512: 0.037, 1024: 0.134},
}

MODELS = ("efanet", "adain")
# Sizes at which `time ratio / FLOP ratio` and efficiency are reported.
KEY_SIZES = (512, 1024)
# Targets of the CPU efficiency issue: efanet/AdaIN time ratio over their FLOP
# ratio, and efanet's GFLOP/s as a fraction of the bare VGG encoder's at 512.
TARGET_RATIO_OVER_FLOPS = 1.1
TARGET_EFFICIENCY = 0.85


def latency_line(record, precision: str) -> str:
    """Median latency of efanet and AdaIN at one size, their time and FLOP ratios, the paper's."""
    runs = record["runs"]
    e, a = runs["efanet/function"], runs["adain/function"]
    size = record["size"]
    time_ratio = e["median_s"] / a["median_s"]
    flop_ratio = e["gflop"] / a["gflop"]
    line = (
        f"KEY latency {size}x{size} {precision}: efanet {1e3 * e['median_s']:.4g} ms "
        f"[{1e3 * e['min_s']:.4g}-{1e3 * e['max_s']:.4g}], adain {1e3 * a['median_s']:.4g} ms "
        f"[{1e3 * a['min_s']:.4g}-{1e3 * a['max_s']:.4g}] (medians of {len(e['times_s'])} "
        f"rounds); efanet/adain time ratio {time_ratio:.3f}, FLOP ratio {flop_ratio:.3f} "
        f"({time_ratio / flop_ratio:.3f}x)"
    )
    if size in PAPER_TABLE2_S["efanet"]:
        paper = {m: 1e3 * PAPER_TABLE2_S[m][size] for m in MODELS}
        line += f"; paper (Titan Xp) efanet {paper['efanet']:g} ms, adain {paper['adain']:g} ms"
    return line


def summary_lines(records, precision: str = "float32", load=None) -> list[str]:
    """The key ratios: time vs FLOP ratio at 512/1024, latencies and efficiency vs VGG.

    Ratios are medians of the per-round ratios with their [min-max] over the
    rounds, from the wall clock (the spec's measure) and, beside them, from
    the median process CPU time, the one to trust on a machine shared with
    other jobs. `load` (the 1/5/15-minute load average at start) is repeated
    on each line so that a line quoted alone still says how busy the machine was.
    """
    at_load = "" if load is None else f"; load at start {load[0]:.2f}"
    lines = []
    for r in records:
        q = r.get("ratios/function")
        if r["size"] not in KEY_SIZES or not q:
            continue
        med, lo, hi = common.spread(r["rounds/function"]["time_ratio_over_flop_ratio"])
        lines.append(
            f"KEY size {r['size']}: efanet/adain time ratio {q['time_efanet_over_adain']:.3f} / "
            f"FLOP ratio {q['flops_efanet_over_adain']:.3f} = {med:.3f}x [{lo:.3f}-{hi:.3f}] "
            f"over {len(r['rounds/function']['time_ratio_over_flop_ratio'])} rounds "
            f"(CPU time: {q['cpu_time_ratio_over_flop_ratio']:.3f}x); target <= "
            f"{TARGET_RATIO_OVER_FLOPS}x: {common.verdict(lo, hi, TARGET_RATIO_OVER_FLOPS)}{at_load}"
        )
    for r in records:
        lines.append(latency_line(r, precision))
    for r in records:
        if r["size"] == 512:
            eff, cpu = r["efficiency_vs_vgg"], r["cpu_efficiency_vs_vgg"]
            med, lo, hi = common.spread(r["rounds/function"]["efanet_efficiency_vs_vgg"])
            lines.append(
                f"KEY size 512: efanet GFLOP/s = {100 * med:.1f}% [{100 * lo:.1f}-{100 * hi:.1f}] "
                f"of the bare VGG encoder's (CPU time: {100 * cpu['efanet']:.1f}%), adain "
                f"{100 * eff['adain']:.1f}% ({100 * cpu['adain']:.1f}%); target >= "
                f"{100 * TARGET_EFFICIENCY:.0f}%: "
                f"{common.verdict(lo, hi, TARGET_EFFICIENCY, at_most=False)}{at_load}"
            )
    return lines


def group_lines(result, size) -> list[str]:
    """The KEY line of the per-group profile: which groups run below the encoder's GFLOP/s."""
    slow = op_groups.slow_groups(result, TARGET_EFFICIENCY)
    groups = result["groups"]
    listed = ", ".join(
        f"{g} {groups[g]['rate_vs_vgg']:.2f}x at {100 * groups[g]['time_share']:.1f}% of the time"
        for g in slow
    )
    return [
        f"KEY size {size} groups: "
        + (
            f"below {TARGET_EFFICIENCY:.2f}x VGG's GFLOP/s: {listed}"
            if slow
            else "none of the "
            f"groups with >= 1% of the time runs below {TARGET_EFFICIENCY:.2f}x VGG's GFLOP/s"
        )
        + f"; groups sum {1e3 * result['groups_sum_median_s']:.0f} ms vs whole "
        f"{1e3 * result['stylize_median_s']:.0f} ms"
    ]
