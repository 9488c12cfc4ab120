#!/usr/bin/env python3
"""The training steps `slimc bench` times, written in PyTorch eager, for a side-by-side
comparison on the same machine (scripts/gpu-check.sh).

  resnet20 --scheme us     the US-Nets sandwich step slimc bench runs: widths 1.0, 0.25 and
                           two uniform random widths in [0.25, 1], each a forward on the
                           active weight slices; the smaller widths learn from the full
                           width's detached softmax (inplace distillation); one SGD step
                           (Nesterov momentum 0.9, weight decay 5e-5 on conv/linear
                           weights, lr 0.01) on the summed loss.
  resnet50 --scheme fixed  one width (default 1.0), plain cross-entropy, the same SGD.

Channels at width w are floor(w * c) (at least 1), slimc's `rounding floor` for both
networks. Prints one JSON object: images per second over the timed steps (after two
warm-up steps), the step time, and the device.
"""
import argparse
import json
import math
import random
import time

import torch
import torch.nn.functional as F


def channels(c, w):
    return max(1, math.floor(w * c))


class Conv:
    def __init__(self, cin, cout, k, stride, params, device):
        w = torch.empty(cout, cin, k, k, device=device)
        torch.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
        self.w = w.requires_grad_()
        self.stride, self.pad = stride, k // 2
        params["decay"].append(self.w)

    def __call__(self, x, cout):
        return F.conv2d(x, self.w[:cout, : x.shape[1]], None, self.stride, self.pad)


class BN:
    def __init__(self, c, params, device):
        self.g = torch.ones(c, device=device, requires_grad=True)
        self.b = torch.zeros(c, device=device, requires_grad=True)
        params["other"] += [self.g, self.b]

    def __call__(self, x):
        c = x.shape[1]
        return F.batch_norm(x, None, None, self.g[:c], self.b[:c], training=True, eps=1e-5)


class Linear:
    def __init__(self, cin, cout, params, device):
        bound = 1 / math.sqrt(cin)
        self.w = torch.empty(cout, cin, device=device).uniform_(-bound, bound).requires_grad_()
        self.b = torch.empty(cout, device=device).uniform_(-bound, bound).requires_grad_()
        params["decay"].append(self.w)
        params["other"].append(self.b)

    def __call__(self, x):
        return F.linear(x, self.w[:, : x.shape[1]], self.b)


class ResNet20:
    """He et al. 2016 §4.2 with option-A shortcuts, as models/resnet20.slim."""

    def __init__(self, classes, device):
        self.params = {"decay": [], "other": []}
        p = self.params
        self.stem, self.stem_bn = Conv(3, 16, 3, 1, p, device), BN(16, p, device)
        self.blocks = []
        cin = 16
        for c, stride in [(16, 1), (32, 2), (64, 2)]:
            for i in range(3):
                s = stride if i == 0 else 1
                self.blocks.append((c, s, Conv(cin, c, 3, s, p, device), BN(c, p, device), Conv(c, c, 3, 1, p, device), BN(c, p, device)))
                cin = c
        self.fc = Linear(64, classes, p, device)

    def __call__(self, x, w):
        x = F.relu(self.stem_bn(self.stem(x, channels(16, w))))
        for c, s, c1, b1, c2, b2 in self.blocks:
            cw = channels(c, w)
            y = F.relu(b1(c1(x, cw)))
            y = b2(c2(y, cw))
            skip = x
            if s != 1 or x.shape[1] != cw:
                skip = x[:, :, ::s, ::s]
                skip = F.pad(skip, (0, 0, 0, 0, 0, cw - skip.shape[1]))
            x = F.relu(y + skip)
        return self.fc(x.mean((2, 3)))


class ResNet50:
    """torchvision's resnet50 (v1.5), as models/resnet50.slim."""

    def __init__(self, classes, device):
        self.params = {"decay": [], "other": []}
        p = self.params
        self.stem, self.stem_bn = Conv(3, 64, 7, 2, p, device), BN(64, p, device)
        self.blocks = []
        cin = 64
        for c, n, stride in [(256, 3, 1), (512, 4, 2), (1024, 6, 2), (2048, 3, 2)]:
            for i in range(n):
                s = stride if i == 0 else 1
                mid = c // 4
                main = [Conv(cin, mid, 1, 1, p, device), BN(mid, p, device), Conv(mid, mid, 3, s, p, device),
                        BN(mid, p, device), Conv(mid, c, 1, 1, p, device), BN(c, p, device)]
                skip = None
                if s != 1 or cin != c:
                    skip = (Conv(cin, c, 1, s, p, device), BN(c, p, device))
                self.blocks.append((c, main, skip))
                cin = c
        self.fc = Linear(2048, classes, p, device)

    def __call__(self, x, w):
        x = F.relu(self.stem_bn(self.stem(x, channels(64, w))))
        x = F.max_pool2d(x, 3, 2, 1)
        for c, (c1, b1, c2, b2, c3, b3), skip in self.blocks:
            mid, cw = channels(c // 4, w), channels(c, w)
            y = F.relu(b1(c1(x, mid)))
            y = F.relu(b2(c2(y, mid)))
            y = b3(c3(y, cw))
            s = x if skip is None else skip[1](skip[0](x, cw))
            x = F.relu(y + s)
        return self.fc(x.mean((2, 3)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=["resnet20", "resnet50"])
    ap.add_argument("--scheme", choices=["us", "fixed"], default="us")
    ap.add_argument("--width", type=float, default=1.0, help="the width of --scheme fixed")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, help="input size (default 32 for resnet20, 224 for resnet50)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    random.seed(0)
    dev = torch.device(a.device)
    classes, size = (10, a.size or 32) if a.model == "resnet20" else (1000, a.size or 224)
    net = (ResNet20 if a.model == "resnet20" else ResNet50)(classes, dev)
    opt = torch.optim.SGD([{"params": net.params["decay"], "weight_decay": 5e-5},
                           {"params": net.params["other"], "weight_decay": 0.0}],
                          lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(a.batch, 3, size, size, device=dev)
    y = torch.randint(0, classes, (a.batch,), device=dev)

    def step():
        widths = [1.0, 0.25, random.uniform(0.25, 1.0), random.uniform(0.25, 1.0)] if a.scheme == "us" else [a.width]
        opt.zero_grad(set_to_none=True)
        teacher, total = None, 0.0
        for w in widths:
            logits = net(x, w)
            if teacher is None:
                loss = F.cross_entropy(logits, y)
                teacher = F.softmax(logits.detach(), 1)
            else:
                loss = -(teacher * F.log_softmax(logits, 1)).sum(1).mean()
            total = total + loss
        total.backward()
        opt.step()
        return total

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(2):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    loss.item()
    sync()
    step_s = (time.perf_counter() - start) / a.steps
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(json.dumps({"framework": f"pytorch {torch.__version__} eager", "model": a.model, "scheme": a.scheme,
                      "device": name, "batch": a.batch, "size": size, "steps": a.steps,
                      "img_per_s": a.batch / step_s, "step_s": step_s}))


if __name__ == "__main__":
    main()
