"""Images in and out: file reading and listing (`image_io`, `sources`) and the training input.

`pipeline` is the tf.data input (TensorFlow, decoding with `tf_decode`), `pydata` the backend-neutral
`keras.utils.PyDataset` one. Imports nothing else of the package.
"""
