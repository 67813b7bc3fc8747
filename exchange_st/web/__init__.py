"""The browser page: the model as ONNX (`onnx_export`) and the static page around it (`page`)."""
