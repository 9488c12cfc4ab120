"""Gives a weightless graph of tests/onnx (scripts/onnx_graphs.py) random weights and runs
it in onnxruntime: the reference `slimc import` is tested against (tests/import.rs).

    python3 scripts/onnx_random.py MODEL.onnx OUT_DIR [SEED]

copies MODEL.onnx into OUT_DIR, writes its external data there (values drawn per tensor:
a weight N(0, 1/fan_in), a 1-D tensor uniform in [0.5, 1.5], so that BN variances are
positive and activations keep their scale through deep networks), and writes one random
input batch `input.bin` and onnxruntime's output `logits.bin` (raw little-endian f32,
the shapes in `shapes.txt`).
"""

import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto


def main():
    src, out = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    dst = os.path.join(out, os.path.basename(src))
    shutil.copyfile(src, dst)
    m = onnx.load(dst, load_external_data=False)
    chunks = {}
    for t in m.graph.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        dims = list(t.dims)
        n = int(np.prod(dims)) if dims else 1
        if len(dims) >= 2:
            fan_in = int(np.prod(dims[1:]))
            values = rng.normal(0.0, 1.0 / np.sqrt(fan_in), n)
        else:
            values = rng.uniform(0.5, 1.5, n)
        chunks.setdefault(info["location"], []).append((int(info.get("offset", 0)), values.astype("<f4").tobytes()))
    for location, parts in chunks.items():
        size = max(o + len(b) for o, b in parts)
        data = bytearray(size)
        for o, b in parts:
            data[o : o + len(b)] = b
        with open(os.path.join(out, location), "wb") as f:
            f.write(bytes(data))
    session = ort.InferenceSession(dst, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = rng.standard_normal(shape).astype("<f4")
    (y,) = session.run(None, {inp.name: x})
    x.tofile(os.path.join(out, "input.bin"))
    y.astype("<f4").tofile(os.path.join(out, "logits.bin"))
    with open(os.path.join(out, "shapes.txt"), "w") as f:
        f.write(" ".join(map(str, x.shape)) + "\n" + " ".join(map(str, y.shape)) + "\n")


if __name__ == "__main__":
    main()
