"""A torchvision model's state_dict with random weights, saved as safetensors under
torchvision's own names, and the model's eval-mode logits on one random batch: the
reference `slimc train/eval FILE.slim --init STATE_DICT` (names matched by structure)
is tested against (tests/import.rs).

    python3 scripts/torchvision_state_dict.py MODEL OUT_DIR [SIZE] [SEED]

MODEL is a torchvision.models builder (resnet18, mobilenet_v2, ...), built with
weights=None (nothing is downloaded). Every parameter and BN statistic is redrawn (a
weight N(0, 1/fan_in), a 1-D tensor uniform in [0.5, 1.5], so that BN variances are
positive and activations keep their scale through deep networks). Writes OUT_DIR/
state_dict.safetensors, input.bin ([1, 3, SIZE, SIZE]) and logits.bin (raw
little-endian f32).
"""

import os
import sys

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file


def main():
    name, out = sys.argv[1], sys.argv[2]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 224
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    torch.manual_seed(seed)
    os.makedirs(out, exist_ok=True)
    model = getattr(torchvision.models, name)(weights=None).eval()
    state = {}
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if t.dtype != torch.float32:
                # num_batches_tracked: a counter, kept as PyTorch saves it.
                state[key] = t
                continue
            if t.dim() >= 2:
                fan_in = max(1, t[0].numel())
                t.copy_(torch.randn_like(t) / fan_in**0.5)
            else:
                t.copy_(torch.rand_like(t) + 0.5)
            state[key] = t.contiguous().clone()
        x = torch.randn(1, 3, size, size)
        logits = model(x)
    save_file(state, os.path.join(out, "state_dict.safetensors"))
    x.numpy().astype(np.float32).tofile(os.path.join(out, "input.bin"))
    logits.numpy().astype(np.float32).tofile(os.path.join(out, "logits.bin"))


if __name__ == "__main__":
    main()
