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
    # TensorFlow is the default backend (tf.data/TFDS input, TensorBoard
    # summaries, SavedModel export, stylize, eval). The model, the losses,
    # the PyDataset input and training with fit also run on Keras' JAX
    # backend without it, from the source tree (README, "Train").
    install_requires=[
        "tensorflow>=2.16",
        "tensorflow-datasets>=4.9",
        "keras>=3.5",
        "numpy",
        "pillow",
        "absl-py",
        "h5py",
        # Available memory on any OS, for automatic tiling (TFDS installs it too).
        "psutil",
        # The release's weight files (pretrained/efanet/*.safetensors).
        "safetensors",
    ],
    extras_require={
        # JAX training on the CPU.
        "jax": ["jax"],
        # Training on an NVIDIA GPU in one install line: JAX with CUDA 12 (train.py
        # runs on it with KERAS_BACKEND=jax; TensorFlow stays for export and eval).
        "cuda": ["jax[cuda12]"],
        # The tests also run the core and training on JAX (CPU); pytest-xdist
        # runs them on two workers (setup.cfg), which halves the suite's wait.
        # imageio-ffmpeg (its wheel bundles ffmpeg) so that the mp4 path is tested too.
        # ai-edge-litert: the LiteRT runtime the TFLite export is checked in.
        # tf2onnx, onnx, onnxruntime: the browser page's model is converted and checked.
        "test": [
            "pytest",
            "pytest-xdist",
            "jax",
            "imageio",
            "imageio-ffmpeg",
            "ai-edge-litert",
            "tf2onnx",
            "onnx",
            "onnxruntime",
        ],
        # mp4 reading/writing for `exchange-st-stylize --video`; without it
        # videos are read/written as PNG frame sequences.
        "video": ["imageio", "imageio-ffmpeg"],
        # LiteRT (formerly TFLite's runtime): `export_savedmodel.py --tflite` checks the
        # converted file in it before writing it, and users run the file with it.
        "litert": ["ai-edge-litert"],
        # `export_savedmodel.py --web`: tf2onnx converts the SavedModel to ONNX for
        # ONNX Runtime Web, onnxruntime checks the file against the SavedModel.
        "web": ["tf2onnx", "onnx", "onnxruntime"],
    },
    # The browser page's static files and its npm lockfile.
    package_data={"exchange_st.web": ["static/*"]},
    entry_points={
        "console_scripts": [
            "exchange-st-stylize=exchange_st.inference.stylize:run",
        ],
    },
)
