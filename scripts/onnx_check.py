#!/usr/bin/env python3
"""Runs a slimc ONNX export in onnxruntime and compares it with slimc's own output.

usage: onnx_check.py MODEL.onnx INPUT.f32 EXPECTED.f32 [TOLERANCE]

INPUT.f32 and EXPECTED.f32 are raw little-endian float32 arrays: a batch for the model's
input [N, C, H, W] (N taken from the file size) and the logits slimc computed for it. The
model is first validated with onnx.checker (full check, with shape inference). Prints the
largest absolute difference over the largest |logit|; exits 1 when it exceeds TOLERANCE
(default 1e-4), 2 on bad input.
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    model_path, input_path, expected_path = argv[1:4]
    tol = float(argv[4]) if len(argv) == 5 else 1e-4
    onnx.checker.check_model(onnx.load(model_path), full_check=True)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    [inp] = session.get_inputs()
    _, c, h, w = inp.shape
    x = np.fromfile(input_path, dtype="<f4").reshape(-1, c, h, w)
    expected = np.fromfile(expected_path, dtype="<f4").reshape(x.shape[0], -1)
    [got] = session.run(None, {inp.name: x})
    if got.shape != expected.shape:
        print(f"shape {got.shape}, expected {expected.shape}")
        return 1
    diff = float(np.max(np.abs(got - expected)))
    scale = max(1.0, float(np.max(np.abs(expected))))
    print(f"max |onnxruntime - slimc| = {diff:.3g} (max |logit| {scale:.3g})")
    return 0 if diff <= tol * scale else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
