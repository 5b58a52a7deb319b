from digits_fixtures import (  # noqa: F401 - fixtures
    digits_calib,
    digits_onnx,
    digits_pte,
    digits_source,
    digits_test,
    ort_logits,
    out_dir,
)
