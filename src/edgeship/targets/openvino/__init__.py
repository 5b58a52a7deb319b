"""OpenVINO: ONNX to OpenVINO IR (NNCF INT8), run on an OpenVINO device."""
