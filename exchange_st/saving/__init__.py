"""Models on disk: checkpoints and their configs, the pretrained release, SavedModel and TFLite export.

`serialization` writes and reads one model's weights and config;
`checkpoints` finds and loads any model source (a model_dir, a weights
file, a release). Builds on `nn`, `baselines` and `data`.
"""
