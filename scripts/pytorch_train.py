#!/usr/bin/env python3
"""Trains a `slimc emit --target pytorch` module with a plain PyTorch loop on Fashion-MNIST.

usage: pytorch_train.py MODULE.py DATA_DIR OUT.safetensors [--steps N] [--batch B] [--lr LR]

The US-Nets recipe, as `slimc train --scheme us` runs it: each step trains the full
width on the labels, then the smallest width (0.25) and two random ones, each distilled
from the full width's softmax (the sandwich rule), through the module's `width_mult`
switch; SGD with Nesterov momentum 0.9, weight decay 5e-4 on conv and linear weights,
a cosine learning rate. Inputs are normalised with the training set's mean and standard
deviation, as slimc does. Then it evaluates the test set at widths 0.25, 0.5, 0.75 and
1.0, BN statistics recalibrated per width on 10 training batches (a cumulative average,
as slimc calibrates), prints one line per width, and saves the weights (the
`state_dict()`, slimc's layer names) for `slimc eval FILE.slim --init OUT.safetensors`.
"""

import argparse
import gzip
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_check import load_module, network_class
from safetensors.torch import save_file

WIDTHS = (0.25, 0.5, 0.75, 1.0)


def idx(path):
    """An IDX file (gzip): images as uint8 [N, 28, 28], labels as uint8 [N]."""
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir):
    d = Path(data_dir)
    train_x = idx(d / "train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    train_y = idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64)
    test_x = idx(d / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    test_y = idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    mean, std = float(train_x.mean()), float(train_x.std())
    norm = lambda x: torch.from_numpy((x - mean) / std)[:, None]
    return (
        norm(train_x),
        torch.from_numpy(train_y),
        norm(test_x),
        torch.from_numpy(test_y),
    )


def calibrate(model, x, batch, batches=10):
    """Recomputes every BN layer's statistics at the current width: a cumulative average
    over `batches` training batches (momentum 1/k at batch k)."""
    bns = [m for m in model.modules() if hasattr(m, "running_var")]
    for m in bns:
        m.running_mean.zero_()
        m.running_var.fill_(1.0)
    model.train()
    with torch.no_grad():
        for k in range(batches):
            for m in bns:
                m.momentum = 1.0 / (k + 1)
            model(x[k * batch : (k + 1) * batch])
    model.eval()


def sgd(model, lr):
    """SGD with Nesterov momentum 0.9, weight decay 5e-4 on conv and linear weights only."""
    decay = [q for q in model.parameters() if q.dim() > 1]
    rest = [q for q in model.parameters() if q.dim() <= 1]
    return torch.optim.SGD(
        [
            {"params": decay, "weight_decay": 5e-4},
            {"params": rest, "weight_decay": 0.0},
        ],
        lr=lr,
        momentum=0.9,
        nesterov=True,
    )


def accuracy(model, x, y, batch=500):
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int(
                (model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum()
            )
    return correct / len(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("module")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    train_x, train_y, test_x, test_y = load(a.data)
    model = network_class(load_module(a.module))()
    opt = sgd(model, a.lr)
    order = torch.randperm(len(train_x))
    per_epoch = len(train_x) // a.batch
    start = time.time()
    model.train()
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = a.lr * 0.5 * (1.0 + math.cos(math.pi * step / a.steps))
        if step % per_epoch == 0 and step > 0:
            order = torch.randperm(len(train_x))
        pick = order[(step % per_epoch) * a.batch : (step % per_epoch + 1) * a.batch]
        x, y = train_x[pick], train_y[pick]
        opt.zero_grad()
        model.set_width_mult(1.0)
        top = model(x)
        loss = F.cross_entropy(top, y)
        first = loss.item()
        soft = F.softmax(top.detach(), 1)
        for w in [0.25, rng.uniform(0.25, 1.0), rng.uniform(0.25, 1.0)]:
            model.set_width_mult(w)
            loss = loss - (soft * F.log_softmax(model(x), 1)).sum(1).mean()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == a.steps - 1:
            print(
                f"step {step + 1}/{a.steps}: loss {first:.4f} ({time.time() - start:.0f} s)",
                flush=True,
            )
    model.set_width_mult(1.0)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, a.out)
    results = {}
    for w in WIDTHS:
        model.set_width_mult(w)
        calibrate(model, train_x, a.batch)
        results[w] = accuracy(model, test_x, test_y)
        print(f"width {w}: test top-1 {100 * results[w]:.2f}% (PyTorch)")
    print(json.dumps({"steps": a.steps, "top1": results}))
    print(f"saved {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
