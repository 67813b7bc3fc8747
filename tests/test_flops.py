"""Analytic FLOP counts: VGG by hand, size scaling, configurations, and TF's own graph count."""

import conftest
import keras
import pytest
import tensorflow as tf

from exchange_st.baselines.adain import AdaINNet
from exchange_st.evaluation import flops, train_flops
from exchange_st.nn import decoder
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.nn.vgg import VGGEncoder

# VGG-19 to relu4_1: (C_in, C_out, downsampling of the layer's resolution).
_VGG_CONVS = (
    (3, 64, 0),
    (64, 64, 0),
    (64, 128, 1),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 2),
    (256, 256, 2),
    (256, 256, 2),
    (256, 512, 3),
)


def _hand_vgg(h, w):
    total = 0
    for c_in, c_out, pools in _VGG_CONVS:
        hh, ww = h, w
        for _ in range(pools):
            hh, ww = hh // 2, ww // 2  # 2x2 max pool, floor
        total += 2 * 3 * 3 * c_in * c_out * hh * ww
    return total


@pytest.fixture(scope="module")
def encoder():
    return VGGEncoder(vgg_weights=None)


@pytest.fixture(scope="module")
def small_efanet():
    return conftest.small_efanet(
        0,
        num_exchange_blocks=2,
        compressor_filters=(4, 8),
        num_pre_fusion_blocks=1,
        num_post_fusion_blocks=1,
    )


@pytest.fixture(scope="module")
def small_adain():
    m = AdaINNet(vgg_weights=None, upsample_filters=(16, 8, 8))
    m.build()
    return m


@pytest.mark.parametrize("h,w", [(64, 96), (67, 101), (512, 512)])
def test_vgg_matches_hand_count(encoder, h, w):
    assert flops.vgg_flops(h, w, encoder) == _hand_vgg(h, w)


def test_vgg_per_pixel_constant(encoder):
    # 482,688 FLOPs per input pixel for sizes divisible by 8.
    assert flops.vgg_flops(256, 256, encoder) == 482_688 * 256 * 256


def test_doubling_side_quadruples_conv_flops(encoder, small_efanet, small_adain):
    assert flops.vgg_flops(512, 384, encoder) == 4 * flops.vgg_flops(256, 192, encoder)
    small = flops.efanet_stylize_flops(128, 128, 128, 128, small_efanet).parts
    big = flops.efanet_stylize_flops(256, 256, 256, 256, small_efanet).parts
    for part in ("vgg_content", "vgg_style", "content_code", "render", "fusion", "purify"):
        assert big[part] == 4 * small[part], part
    # The covariance compressor works on the 512 x 512 matrix at every size.
    assert big["compressor_content"] == small["compressor_content"]
    a_small = flops.adain_stylize_flops(128, 128, 128, 128, small_adain).total
    a_big = flops.adain_stylize_flops(256, 256, 256, 256, small_adain).total
    assert 3.99 < a_big / a_small <= 4.0


def test_counts_follow_the_configuration(small_efanet):
    h = w = 64
    parts = flops.efanet_stylize_flops(h, w, h, w, small_efanet).parts
    fh, fw = h // 8, w // 8
    # One pre-fusion residual block: two 3x3 512->512 convs at relu4_1 size.
    assert parts["content_code"] == 2 * (2 * 9 * 512 * 512 * fh * fw)
    # Compressor: 512x512x1 -> 256x256x4 -> 128x128x8, then FC 128*128*8 -> 16.
    conv = 2 * 9 * 1 * 4 * 256 * 256 + 2 * 9 * 4 * 8 * 128 * 128
    assert parts["compressor_content"] == conv + 2 * 128 * 128 * 8 * 16
    assert parts["covariance_content"] == 2 * fh * fw * 512 * 512 + 2 * fh * fw * 512
    assert parts["fusion"] == 3 * fh * fw * 512
    # Eq. 8 with alpha < 1 fuses twice and blends.
    blended = flops.efanet_stylize_flops(h, w, h, w, small_efanet, alpha=0.5).parts
    assert blended["fusion"] == 2 * parts["fusion"] + 3 * fh * fw * 512


def test_padding_is_counted(small_efanet, encoder):
    # 60 x 60 is reflect-padded to 64 x 64 before the encoder.
    parts = flops.efanet_stylize_flops(60, 60, 64, 64, small_efanet).parts
    assert parts["vgg_content"] == flops.vgg_flops(64, 64, encoder)


def test_count_flops_batches(small_efanet, small_adain):
    one = flops.count_flops(small_efanet, [1, 64, 64, 3], [1, 64, 64, 3])
    two = flops.count_flops(small_efanet, [2, 64, 64, 3], [2, 64, 64, 3])
    assert two.total == 2 * one.total
    shared = flops.count_flops(small_efanet, [2, 64, 64, 3], [1, 64, 64, 3])
    style_once = sum(one.parts[p] for p in ("vgg_style", "covariance_style", "compressor_style"))
    assert shared.total == two.total - style_once
    adain = flops.count_flops(small_adain, [3, 64, 64, 3], [3, 64, 64, 3])
    assert adain.total == 3 * flops.adain_stylize_flops(64, 64, 64, 64, small_adain).total
    with pytest.raises(TypeError):
        flops.count_flops(object(), [1, 64, 64, 3], [1, 64, 64, 3])


def test_unknown_layer_raises():
    with pytest.raises(TypeError, match="no FLOP rule"):
        flops.layer_stack_flops([keras.layers.Dropout(0.5)], 8, 8)


def _tf_graph_flops(fn, *specs):
    """FLOPs of Conv2D and MatMul ops as TF's graph profiler registers them."""
    graph = tf.function(fn).get_concrete_function(*specs).graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    report = tf.compat.v1.profiler.profile(graph=graph, options=opts)
    by_type = {}
    for node in report.children:
        op = graph.get_operation_by_name(node.name)
        by_type[op.type] = by_type.get(op.type, 0) + node.total_float_ops
    return by_type


def test_convs_and_dense_match_tf_graph_profiler(small_efanet, small_adain):
    """The shape walk agrees with TF's per-op FLOP registry on the traced graphs."""
    spec = tf.TensorSpec([1, 64, 64, 3])
    tf_counts = _tf_graph_flops(lambda c, s: small_adain.stylize(c, s), spec, spec)
    ours = flops.adain_stylize_flops(64, 64, 64, 64, small_adain).parts
    assert tf_counts["Conv2D"] == ours["vgg_content"] + ours["vgg_style"] + ours["render"]

    tf_counts = _tf_graph_flops(lambda c, s: small_efanet.stylize(c, s), spec, spec)
    ours = flops.efanet_stylize_flops(64, 64, 64, 64, small_efanet).parts
    dense = flops.dense_flops
    compressor_fc = dense(small_efanet.compressor.fc)
    convs = (
        ours["vgg_content"]
        + ours["vgg_style"]
        + ours["content_code"]
        + ours["render"]
        + ours["compressor_content"]
        + ours["compressor_style"]
        - 2 * compressor_fc
    )
    assert tf_counts["Conv2D"] == convs
    assert tf_counts["MatMul"] == ours["codes"] + 2 * compressor_fc


def test_fusion_rank_scales_the_fusion_count():
    one = decoder.CSFusion("ours", 16)
    four = decoder.CSFusion("ours", 16, rank=4)
    assert flops.fusion_flops(one, 10, 16) == 3 * 10 * 16
    assert flops.fusion_flops(four, 10, 16) == 4 * 4 * 10 * 16


def test_training_forward_matches_tf_graph_profiler(small_efanet, small_adain):
    """`training_flops` counts the convs and dense layers of `compute_loss`'s traced graph."""
    content, style = [2, 64, 64, 3], [2, 48, 64, 3]
    specs = tf.TensorSpec(content), tf.TensorSpec(style)

    def objective(model):
        return lambda c, s: model.compute_loss(x={"content": c, "style": s})

    tf_counts = _tf_graph_flops(objective(small_adain), *specs)
    ours = train_flops.training_flops(small_adain, content, style).parts
    convs = ours["vgg_content"] + ours["vgg_style"] + ours["render"] + ours["vgg_outputs"]
    assert tf_counts["Conv2D"] == convs

    tf_counts = _tf_graph_flops(objective(small_efanet), *specs)
    ours = train_flops.training_flops(small_efanet, content, style).parts
    # Two compressor FCs (content, style) per pair are dense, not convs.
    compressor_fcs = 2 * 2 * flops.dense_flops(small_efanet.compressor.fc)
    convs = sum(
        ours[p]
        for p in (
            "vgg_content",
            "vgg_style",
            "vgg_outputs",
            "compressor_content",
            "compressor_style",
            "content_code",
            "render",
        )
    )
    assert tf_counts["Conv2D"] == convs - compressor_fcs
    assert tf_counts["MatMul"] == ours["codes"] + compressor_fcs


def test_training_step_conventions(small_efanet):
    forward = train_flops.training_flops(small_efanet, [1, 64, 64, 3])
    assert train_flops.training_step_flops(forward) == 3 * forward.total
    frozen = sum(forward.parts[p] for p in train_flops.NO_BACKWARD_PARTS if p in forward.parts)
    outputs = forward.parts["vgg_outputs"]
    # Nothing of the frozen encoder on the inputs is differentiated, the
    # encoder on the outputs only with respect to its input.
    needed = train_flops.training_step_flops(forward, "needed")
    assert needed == 3 * forward.total - 2 * frozen - outputs
    assert frozen > 0 and forward.total < needed < 3 * forward.total
    with pytest.raises(ValueError, match="convention"):
        train_flops.training_step_flops(forward, "2x")


def test_paper_training_step_at_256(encoder):
    """The issue's arithmetic: ~400 GFLOP forward per 256x256 pair, 4.8 TFLOP per step of 4."""
    model = ExchangeStyleTransfer(vgg_weights=None)
    forward = train_flops.training_flops(model, [4, 256, 256, 3])
    # Four VGG passes per pair (both inputs, s2c, c2s).
    assert forward.parts["vgg_content"] + forward.parts["vgg_outputs"] == 3 * 4 * flops.vgg_flops(
        256, 256, encoder
    )
    assert 390e9 < forward.total / 4 < 410e9
    assert 4.7e12 < train_flops.training_step_flops(forward) < 4.9e12
