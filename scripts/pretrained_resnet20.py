#!/usr/bin/env python3
"""Trains ResNet-20 at full width in plain PyTorch on Fashion-MNIST: the "pretrained
model" of the README's fine-tuning story (scripts/finetune-story.sh).

usage: pretrained_resnet20.py DATA_DIR OUT_DIR [--epochs E] [--batch B] [--lr LR] [--seed S]

SGD with Nesterov momentum 0.9, weight decay 5e-4 on conv and linear weights, a cosine
learning rate after a 0.2-epoch warm-up, label smoothing 0.1, random horizontal flips;
all 60,000 training images. Inputs are normalised with the training set's mean and
standard deviation (one value each; `slimc --normalize MEAN/STD` takes them). Writes to
OUT_DIR:
  resnet20.onnx           the eval-mode graph, TorchScript exporter (opset 17), with its
                          BN nodes kept (training=PRESERVE), for `slimc import`
  resnet20.safetensors    the state_dict (PyTorch's module names)
  pytorch.json            test top-1 in eval mode (running statistics), the
                          normalisation, the epochs and the seconds they took
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from pytorch_train import accuracy, idx, sgd
from safetensors.torch import save_file
from torch_resnet20 import ResNet20


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    d, out = Path(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    train_x = (
        torch.from_numpy(idx(d / "train-images-idx3-ubyte.gz").copy()).float() / 255.0
    )
    train_y = torch.from_numpy(idx(d / "train-labels-idx1-ubyte.gz").copy()).long()
    test_x = (
        torch.from_numpy(idx(d / "t10k-images-idx3-ubyte.gz").copy()).float() / 255.0
    )
    test_y = torch.from_numpy(idx(d / "t10k-labels-idx1-ubyte.gz").copy()).long()
    mean, std = float(train_x.mean()), float(train_x.std())
    train_x = ((train_x - mean) / std)[:, None]
    test_x = ((test_x - mean) / std)[:, None]

    model = ResNet20(classes=10, in_channels=1)
    opt = sgd(model, a.lr)
    per_epoch = len(train_x) // a.batch
    total, warm = a.epochs * per_epoch, 0.2 * per_epoch
    start = time.time()
    step = 0
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(len(train_x))
        for i in range(per_epoch):
            lr = (
                a.lr * (step + 1) / warm
                if step < warm
                else a.lr
                * 0.5
                * (1 + math.cos(math.pi * (step - warm) / (total - warm)))
            )
            for g in opt.param_groups:
                g["lr"] = lr
            pick = order[i * a.batch : (i + 1) * a.batch]
            x, y = train_x[pick], train_y[pick]
            flip = torch.rand(len(x)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        model.eval()
        top1 = accuracy(model, test_x, test_y)
        print(
            f"epoch {epoch + 1}/{a.epochs}: loss {loss.item():.4f}, test top-1 {100 * top1:.2f}% ({time.time() - start:.0f} s)",
            flush=True,
        )
    seconds = time.time() - start
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(out / "resnet20.safetensors"),
    )
    torch.onnx.export(
        model,
        (test_x[:1],),
        str(out / "resnet20.onnx"),
        dynamo=False,
        opset_version=17,
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    # The last epoch's evaluation, in eval mode: the model exported and saved.
    correct = round(top1 * len(test_x))
    doc = {
        "epochs": a.epochs,
        "seconds": round(seconds),
        "test_top1": correct / len(test_x),
        "test_correct": correct,
        "mean": mean,
        "std": std,
    }
    (out / "pytorch.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
