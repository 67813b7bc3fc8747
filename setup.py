"""Packaging for exchange_st."""

import setuptools

setuptools.setup(
    name="exchange_st",
    version="0.1.0",
    description=(
        "Pair-wise Exchangeable Feature Extraction for Arbitrary Style "
        "Transfer (Wu et al.) in Keras 3 (TensorFlow 2; training also on JAX)."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["exchange_st", "exchange_st.*"]),
    python_requires=">=3.10",
    # Backend-neutral: the model, the losses, the PyDataset input and
    # training with fit run on Keras' JAX backend without TensorFlow.
    install_requires=[
        "keras>=3.5",
        "numpy",
        "pillow",
        "absl-py",
        "h5py",
    ],
    extras_require={
        # TensorFlow: tf.data/TFDS input, TensorBoard summaries, SavedModel
        # export, stylize and eval.
        "tf": ["tensorflow>=2.16", "tensorflow-datasets>=4.9"],
        # JAX training (on CUDA: pip install "jax[cuda12]" first).
        "jax": ["jax"],
        "test": ["pytest"],
        # mp4 reading/writing for `exchange-st-stylize --video`; without it
        # videos are read/written as PNG frame sequences.
        "video": ["imageio", "imageio-ffmpeg"],
    },
    entry_points={
        "console_scripts": [
            "exchange-st-stylize=exchange_st.stylize:run",
        ],
    },
)
