r"""Does one random crop's style statistic identify its image? Covariance (Sec. 3.1) vs AdaIN's.

The covariance compressor reads the 512 x 512 covariance of a crop's relu4_1
map, estimated from (crop / 8)^2 pixels: 64 at the learning check's 64x64
crops, 1024 at the paper's 256x256. AdaIN reads 2 x 512 channel means and
standard deviations from the same pixels. For each crop size this takes two
random crops of each style image (short side resized to `resize_factor` x
the crop, as training does) and prints how often the statistic of the second
crop finds the first crop of its own image among all images' first crops
(`accuracy`, 1/N by chance) and the median ratio of the distance between an
image's two crops to the distance to another image's crop (`within/between`,
~1 when the statistic says nothing about the image):
`diagnostics.crop_identification`. A style path trained on new crops every
step can only generalise from what a crop's statistic says about its image.

    python -m bench.style_statistics --style_dir=../shared/data/train/style \
        --vgg_weights=../shared/weights/vgg19_to_relu4_1_float16.h5
"""

from __future__ import annotations

import keras
import numpy as np
from absl import app, flags

from bench import common
from exchange_st.data import image_io, pydata
from exchange_st.nn import covariance
from exchange_st.evaluation import diagnostics
from exchange_st.nn.vgg import VGGEncoder

FLAGS = flags.FLAGS
flags.DEFINE_string("style_dir", None, "Style images.", required=True)
flags.DEFINE_string("vgg_weights", "imagenet", "VGG-19 weights: 'imagenet' or an h5 path.")
flags.DEFINE_list("crop_sizes", ["64", "128", "256"], "Crop sides to compare.")
flags.DEFINE_integer("images", 48, "Style images (the first N of the sorted directory).")
flags.DEFINE_float("resize_factor", 2.0, "Short side before cropping, in crops (512/256 = 2).")
flags.DEFINE_integer("seed", 0, "Crop positions.")


def crop_statistics(encoder, image, crop_size, rng):
    """Flattened relu4_1 covariance and concatenated channel mean and std of one random crop."""
    crop = pydata.random_crop(image, crop_size, rng)
    f_vgg = encoder(crop[None], output_all=False)
    cov = keras.ops.convert_to_numpy(covariance.masked_covariance(f_vgg))[0]
    f = keras.ops.convert_to_numpy(f_vgg)[0].reshape(-1, cov.shape[0])
    return cov.ravel(), np.concatenate([f.mean(axis=0), f.std(axis=0)])


def main(argv):
    del argv
    common.print_load()
    encoder = VGGEncoder(FLAGS.vgg_weights)
    files = image_io.list_images(FLAGS.style_dir)[: FLAGS.images]
    rng = np.random.default_rng(FLAGS.seed)
    originals = [image_io.load_image(f) for f in files]
    rows = []
    for crop_size in (int(c) for c in FLAGS.crop_sizes):
        short_side = int(round(FLAGS.resize_factor * crop_size))
        images = [pydata.resize_short_side(x, short_side) for x in originals]
        stats = [[crop_statistics(encoder, x, crop_size, rng) for x in images] for _ in range(2)]
        for name, index in (("covariance", 0), ("mean+std", 1)):
            first, second = (np.stack([s[index] for s in crops]) for crops in stats)
            found = diagnostics.crop_identification(first, second)
            rows.append(
                [crop_size, (crop_size // 8) ** 2, name, found["accuracy"], found["within_between"]]
            )
    print(f"{len(files)} images of {FLAGS.style_dir}; chance accuracy {1 / len(files):.3f}")
    header = ["crop", "relu4_1 pixels", "statistic", "accuracy", "within/between"]
    print(common.format_table(header, rows))


if __name__ == "__main__":
    app.run(main)
