"""The network and its objective (Sec. 3): backend-neutral Keras 3 layers, the model, the losses.

Imports nothing else of the package: everything else builds on it.
"""
