#!/usr/bin/env python3
"""Checks a `slimc emit --target pytorch` module against slimc's own numbers (tests/pytorch.rs).

usage:
  pytorch_check.py model MODULE.py CASES.json
  pytorch_check.py step MODULE.py CASE.json

`model`: CASES.json lists configurations, each with `slimc space --json` at its multipliers
(`space`), the safetensors file of slimc's subnet there (`weights`, `full` when it is the
full-width network), a batch (`input`, raw little-endian f32 [N, C, H, W] of `shape`), and
slimc's logits for it (`logits`). Checks `search_dim`, `channel_space`, `decode_wm`,
`decode_ch` and the channels `set_real_ch` (or `width_mult`, for a `uniform` case) gives
each slimmable layer, then the logits in evaluation mode (tolerance 1e-4 of max |logit|).

`step`: one SGD step (momentum 0.9, Nesterov, weight decay on conv and linear weights) of
the sandwich rule at the full width and at `low` (`uniform`), the low width distilled from
the full width's softmax, from `start` (a full-width safetensors file) on a batch (`input`,
`labels`: raw little-endian i64); the updated parameters must equal `end` (slimc's step).

Prints one line per check; exits 1 on a mismatch, 2 on bad usage.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

TOLERANCE = 1e-4


def load_module(path):
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def network_class(module):
    """The module's network: the class with `search_dim` defined in it."""
    [cls] = [
        c
        for c in vars(module).values()
        if isinstance(c, type)
        and c.__module__ == module.__name__
        and hasattr(c, "search_dim")
    ]
    return cls


def raw(path, dtype, shape):
    return torch.from_numpy(np.fromfile(path, dtype=dtype).reshape(shape))


def nested(flat, like):
    it = iter(flat)
    return [[next(it) for _ in e] if isinstance(e, list) else next(it) for e in like]


def relative(a, b):
    return float((a - b).abs().max()) / max(1.0, float(b.abs().max()))


def check_model(module_path, cases_path):
    module = load_module(module_path)
    cases = json.loads(Path(cases_path).read_text())
    model = network_class(module)()
    failures = 0
    for case in cases:
        space = case["space"]
        label = f"wm {case['wm'][:4]}{'...' if len(case['wm']) > 4 else ''}"
        assert model.search_dim == space["search_dim"], (
            model.search_dim,
            space["search_dim"],
        )
        assert model.channel_space == space["channel_space"], (
            model.channel_space,
            space["channel_space"],
        )
        ch = model.decode_wm(case["wm"])
        assert ch == nested(space["channels"], space["channel_space"]), (
            label,
            ch,
            space["channels"],
        )
        real = model.decode_ch(ch)
        assert real == [layer["out"] for layer in space["layers"]], label
        sd = load_file(case["weights"])
        if case["full"]:
            model.load_state_dict(sd, strict=True)
        else:
            model.load_subnet(sd)
        x = raw(case["input"], "<f4", case["shape"])
        expected = raw(case["logits"], "<f4", (case["shape"][0], -1))
        model.eval()
        if case["uniform"] is not None:
            # The S-/US-Nets switch; the next forward applies it.
            w = case["uniform"]
            model.apply(lambda m, w=w: setattr(m, "width_mult", w))
        else:
            model.set_real_ch(real)
        with torch.no_grad():
            got = model(x)
        slim = model.slim_layers()
        for layer in space["layers"]:
            m = slim.get(layer["name"])
            if m is not None:
                seen = (
                    m.in_ch,
                    m.out_ch,
                    m.groups if layer["op"] in ("conv", "dwconv") else layer["groups"],
                )
                assert seen == (layer["in"], layer["out"], layer["groups"]), (
                    label,
                    layer,
                    seen,
                )
        d = relative(got, expected)
        ok = got.shape == expected.shape and d <= TOLERANCE
        failures += not ok
        print(
            f"{label}: max |pytorch - slimc| / max |logit| = {d:.3g}{'' if ok else '  MISMATCH'}"
        )
    return 1 if failures else 0


def check_step(module_path, case_path):
    module = load_module(module_path)
    case = json.loads(Path(case_path).read_text())
    model = network_class(module)()
    start = load_file(case["start"])
    model.load_state_dict(start, strict=True)
    model.train()
    x = raw(case["input"], "<f4", case["shape"])
    y = raw(case["labels"], "<i8", (case["shape"][0],))
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD(
        [
            {"params": decay, "weight_decay": case["weight_decay"]},
            {"params": rest, "weight_decay": 0.0},
        ],
        lr=case["lr"],
        momentum=0.9,
        nesterov=True,
    )
    opt.zero_grad()
    model.set_width_mult(1.0)
    top = model(x)
    loss = F.cross_entropy(top, y)
    soft = F.softmax(top.detach(), 1)
    model.set_width_mult(case["uniform"])
    low = model(x)
    loss = loss - (soft * F.log_softmax(low, 1)).sum(1).mean()
    loss.backward()
    opt.step()
    end = load_file(case["end"])
    # The weights after the step (the tolerance of the logits), and the step itself: its
    # error over all parameters (L2, relative), and the largest one in any tensor relative
    # to that tensor's largest update (reported: BN's backward pass cancels, so a single
    # element of a float32 step can differ by a few 1e-3 between two correct programs).
    weights, elem = (0.0, ""), (0.0, "")
    diff2 = norm2 = 0.0
    for key, value in model.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            continue
        ours, theirs = value - start[key], end[key] - start[key]
        diff2 += float((ours - theirs).pow(2).sum())
        norm2 += float(theirs.pow(2).sum())
        w = relative(value, end[key])
        u = float((ours - theirs).abs().max()) / max(1e-12, float(theirs.abs().max()))
        weights = max(weights, (w, key))
        elem = max(elem, (u, key))
    update = (diff2 / max(norm2, 1e-30)) ** 0.5
    ok = weights[0] <= TOLERANCE and update <= 1e-2
    print(
        f"one sandwich step: weights differ by {weights[0]:.3g} of max(1, |w|) ({weights[1]}); "
        f"the update by {update:.3g} (L2, relative), at most {elem[0]:.3g} of a tensor's "
        f"largest update ({elem[1]}){'' if ok else '  MISMATCH'}"
    )
    return 0 if ok else 1


def main(argv):
    if len(argv) != 4 or argv[1] not in ("model", "step"):
        print(__doc__, file=sys.stderr)
        return 2
    torch.manual_seed(0)
    return (check_model if argv[1] == "model" else check_step)(argv[2], argv[3])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
