"""Per-op-group time of one efanet stylization against its FLOP share.

`ExchangeStyleTransfer.stylize` is cut at its natural seams (VGG encoder,
covariance, compressor convs, FC codes, purification and pre-fusion residual
blocks, fusion, post-fusion residual blocks, upsampling convs with the RGB
conv, crop and clip), and each piece is compiled on its own and timed,
round-robin, on the tensors the previous piece produced. Each group's
GFLOP/s is then compared with the VGG encoder's (the same model's first
group): a group far below it is where efanet loses speed per FLOP. The sum
of the groups is reported next to the whole stylization, so the overhead of
cutting it (tensors materialised between groups) is visible.

Used by `bench.inference --group_size=512`.
"""

from __future__ import annotations

import statistics

import keras

from bench import common
from exchange_st.evaluation import flops as flops_lib
from exchange_st.nn import ops
from exchange_st.nn.covariance import masked_covariance

GROUPS = (
    "vgg",
    "covariance",
    "compressor",
    "codes",
    "pre_blocks",
    "fusion",
    "post_blocks",
    "upsampler",
)


def group_flops(model, content_shape, style_shape) -> dict[str, int]:
    """FLOPs of each group of `GROUPS` for one stylization (`flops.count_flops` parts, regrouped)."""
    parts = flops_lib.count_flops(model, content_shape, style_shape).parts
    stride = ops.ENCODER_STRIDE
    h, w = (-(-n // stride) * stride for n in content_shape[1:3])
    _, fh, fw = flops_lib.layer_stack_flops(model.encoder.blocks, h, w)
    post, _, _ = flops_lib.layer_stack_flops(model.decoder_c.post_blocks, fh, fw)
    batch = content_shape[0]
    return {
        "vgg": parts["vgg_content"] + parts["vgg_style"],
        "covariance": parts["covariance_content"] + parts["covariance_style"],
        "compressor": parts["compressor_content"] + parts["compressor_style"],
        "codes": parts["codes"],
        "pre_blocks": parts["purify"] + parts["content_code"],
        "fusion": parts["fusion"],
        "post_blocks": batch * post,
        "upsampler": parts["render"] - batch * post,
    }


def group_functions(model, jit=None):
    """Compiled callables of each group, as `{name: (fn, input keys, output key)}`.

    Each `fn` takes the tensors named by its input keys (see `run_groups`)
    and returns the one named by its output key.
    """
    decoder = model.decoder_c
    compressor = model.compressor

    def vgg(content, style):
        return (
            model.encoder(ops.pad_to_multiple(content), output_all=False),
            model.encoder(ops.pad_to_multiple(style), output_all=False),
        )

    def covariance(f_vgg):
        f_vgg_c, f_vgg_s = f_vgg
        return masked_covariance(f_vgg_c), masked_covariance(f_vgg_s)

    def compress(cov):
        return compressor.compress(cov[0]), compressor.compress(cov[1])

    def codes(f):
        # analyze() after the compressor: the exchange blocks and the heads.
        c = model.exchange_codes(*f)
        return c["v_w_c"], c["v_c_s"], c["v_r_s"]

    def pre_blocks(f_vgg, heads):
        return decoder.content_code(model.purify(f_vgg[0], heads[0]))

    def fusion(code, heads):
        return decoder.fuse(code, heads[1], heads[2])

    def post_blocks(r_fusion):
        return decoder.post_fusion(r_fusion)

    def upsampler(x, content):
        image = ops.crop_to(decoder.upsampler(x), content)
        return keras.ops.clip(keras.ops.cast(image, "float32"), 0.0, 1.0)

    table = {
        "vgg": (vgg, ("content", "style"), "f_vgg"),
        "covariance": (covariance, ("f_vgg",), "cov"),
        "compressor": (compress, ("cov",), "f"),
        "codes": (codes, ("f",), "heads"),
        "pre_blocks": (pre_blocks, ("f_vgg", "heads"), "code"),
        "fusion": (fusion, ("code", "heads"), "r_fusion"),
        "post_blocks": (post_blocks, ("r_fusion",), "post"),
        "upsampler": (upsampler, ("post", "content"), "image"),
    }
    return {
        name: (common.compile_function(fn, model.variables, jit), keys, out)
        for name, (fn, keys, out) in table.items()
    }


def run_groups(model, content, style, warmup=1, repeats=5, budget_s=60.0, min_rounds=3, jit=None):
    """Times every group and the whole stylization, interleaved.

    Returns:
      Dict with `groups` (per group: median seconds, min/max, GFLOP, GFLOP/s,
      time share, FLOP share, GFLOP/s relative to the VGG group's), the
      whole stylization's median, the groups' sum, and per-round totals.
    """
    fns = group_functions(model, jit)
    tensors = {"content": content, "style": style}
    for name in GROUPS:  # One pass in order gives every group its inputs.
        fn, keys, out = fns[name]
        tensors[out] = fn(*(tensors[k] for k in keys))
    whole = common.compile_function(lambda c, s: model.stylize(c, s), model.variables, jit)
    calls = {
        name: (lambda fn=fn, keys=keys: fn(*(tensors[k] for k in keys)))
        for name, (fn, keys, _) in fns.items()
    }
    calls["stylize"] = lambda: whole(content, style)
    timings = common.time_interleaved(calls, warmup, repeats, budget_s, min_rounds)
    counts = group_flops(model, content.shape, style.shape)
    total_flops = sum(counts.values())
    group_sum = sum(timings[g].median for g in GROUPS)
    vgg_rate = counts["vgg"] / timings["vgg"].median
    rows = {}
    for name in GROUPS:
        t = timings[name]
        rows[name] = {
            "median_s": t.median,
            "min_s": t.best,
            "max_s": t.worst,
            "gflop": counts[name] / 1e9,
            "gflops_per_s": counts[name] / 1e9 / t.median,
            "time_share": t.median / group_sum,
            "flop_share": counts[name] / total_flops,
            "rate_vs_vgg": counts[name] / t.median / vgg_rate,
        }
    rounds = len(timings["stylize"].times)
    round_sums = [sum(timings[g].times[i] for g in GROUPS) for i in range(rounds)]
    return {
        "groups": rows,
        "stylize_median_s": timings["stylize"].median,
        "groups_sum_median_s": statistics.median(round_sums),
        "rounds": rounds,
        "gflop": total_flops / 1e9,
    }


def format_groups(result, size) -> str:
    """The per-group table, with the whole stylization and the groups' sum under it."""
    header = ["group", "median ms", "min-max ms", "GFLOP", "GFLOP/s", "time %", "FLOP %", "vs VGG"]
    rows = []
    for name in GROUPS:
        g = result["groups"][name]
        rows.append(
            [
                name,
                f"{1e3 * g['median_s']:.1f}",
                f"{1e3 * g['min_s']:.1f}-{1e3 * g['max_s']:.1f}",
                f"{g['gflop']:.3f}",
                f"{g['gflops_per_s']:.1f}",
                f"{100 * g['time_share']:.1f}",
                f"{100 * g['flop_share']:.1f}",
                f"{g['rate_vs_vgg']:.2f}",
            ]
        )
    return "\n".join(
        [
            f"efanet stylization at {size}x{size} by op group (medians of {result['rounds']} "
            "interleaved rounds; 'vs VGG' = GFLOP/s / the VGG group's):",
            common.format_table(header, rows),
            f"whole stylization {1e3 * result['stylize_median_s']:.1f} ms, sum of the groups "
            f"{1e3 * result['groups_sum_median_s']:.1f} ms",
        ]
    )


def slow_groups(result, threshold=0.85, min_time_share=0.01) -> list[str]:
    """Groups that take at least `min_time_share` of the time at under `threshold` x VGG's GFLOP/s."""
    return [
        name
        for name, g in result["groups"].items()
        if g["time_share"] >= min_time_share and g["rate_vs_vgg"] < threshold
    ]
