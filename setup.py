"""Packaging for exchange_st."""

import setuptools

setuptools.setup(
    name="exchange_st",
    version="0.1.0",
    description=(
        "Pair-wise Exchangeable Feature Extraction for Arbitrary Style "
        "Transfer (Wu et al.) in TensorFlow 2 / Keras 3."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["exchange_st", "exchange_st.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "tensorflow-datasets>=4.9",
        "numpy",
        "pillow",
        "absl-py",
    ],
    extras_require={
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
