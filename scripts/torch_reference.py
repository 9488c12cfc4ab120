#!/usr/bin/env python3
"""The training steps and inference `slimc bench` times, written in PyTorch eager, for a
side-by-side comparison on the same machine (scripts/compare-torch.sh on the CPU,
scripts/gpu-check.sh on a GPU).

  resnet20 --scheme us     the US-Nets sandwich step slimc bench runs: widths 1.0, 0.25 and
                           two uniform random widths in [0.25, 1], each a forward on the
                           active weight slices; the smaller widths learn from the full
                           width's detached softmax (inplace distillation); one SGD step
                           (Nesterov momentum 0.9, weight decay 5e-5 on conv/linear
                           weights, lr 0.01) on the summed loss.
  resnet50 --scheme fixed  one width (default 1.0), plain cross-entropy, the same SGD.
  mobilenet_v2             torchvision's MobileNetV2 as models/mobilenet_v2.slim (32x32
                           input: --size); either scheme.
  vit_fmnist               the small ViT of models/vit_fmnist.slim (28x28 grey input),
                           written as PyTorch users write one: tokens [B, N, C],
                           F.linear, F.layer_norm and F.scaled_dot_product_attention;
                           either scheme.

Channels at width w are floor(w * c) (at least 1) for the ResNets, slimc's `rounding
floor`, and torchvision's _make_divisible(w * c, 8) for MobileNetV2, whose expansion
widths are multiplied as dimensions of their own (make_divisible(w * t * c_in)) and
whose last 1x1 conv (1280) is never slimmed, as in slimc; the ViT keeps floor(w * 4)
whole heads of 24 channels (at least one), and floors its embedding and MLP widths. --infer-widths then times
inference (eval-mode BN with statistics of one batch, no autograd) at each width, as
`slimc bench` does after training. --macs W prints the multiply-adds of width W and
exits: scripts/compare-torch.sh checks them against `slimc cost` so that both sides run
the same network.

Prints one JSON object: training images per second over the timed steps (after two
warm-up steps), the step time, inference images per second per width, and the device.
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


def make_divisible(v, d=8):
    """torchvision's _make_divisible."""
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


MACS = [0]  # multiply-adds of the last forward (conv and linear), for --macs


class Conv:
    """A conv whose active weight is the slice [:cout, :cin]; depthwise takes [:c, :1]."""

    def __init__(self, cin, cout, k, stride, params, device, depthwise=False):
        w = torch.empty(cout, 1 if depthwise else cin, k, k, device=device)
        torch.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
        self.w = w.requires_grad_()
        self.stride, self.pad, self.depthwise = stride, k // 2, depthwise
        params["decay"].append(self.w)

    def __call__(self, x, cout=None):
        cin = x.shape[1]
        if self.depthwise:
            w, groups = self.w[:cin], cin
        else:
            w, groups = self.w[:cout, :cin], 1
        y = F.conv2d(x, w, None, self.stride, self.pad, 1, groups)
        MACS[0] += y.shape[0] * y.shape[1] * w.shape[1] * w.shape[2] * w.shape[3] * y.shape[2] * y.shape[3]
        return y


class BN:
    """Batch statistics in training; in eval mode the statistics `calibrate` stored (one
    set, for the width being timed)."""

    def __init__(self, c, params, device):
        self.g = torch.ones(c, device=device, requires_grad=True)
        self.b = torch.zeros(c, device=device, requires_grad=True)
        self.mean = self.var = None
        self.mode = "train"
        params["other"] += [self.g, self.b]
        params["bn"].append(self)

    def __call__(self, x):
        c = x.shape[1]
        if self.mode == "train":
            return F.batch_norm(x, None, None, self.g[:c], self.b[:c], training=True, eps=1e-5)
        if self.mode == "calibrate":
            self.mean = torch.zeros(c, device=x.device)
            self.var = torch.ones(c, device=x.device)
            return F.batch_norm(x, self.mean, self.var, self.g[:c], self.b[:c], training=True, momentum=1.0, eps=1e-5)
        return F.batch_norm(x, self.mean, self.var, self.g[:c], self.b[:c], training=False, eps=1e-5)


class Linear:
    def __init__(self, cin, cout, params, device):
        bound = 1 / math.sqrt(cin)
        self.w = torch.empty(cout, cin, device=device).uniform_(-bound, bound).requires_grad_()
        self.b = torch.empty(cout, device=device).uniform_(-bound, bound).requires_grad_()
        params["decay"].append(self.w)
        params["other"].append(self.b)

    def __call__(self, x, cout=None):
        """The slice [:cout, :cin] (cout=None: every output), on [B, C] or tokens [B, N, C]."""
        w = self.w[:cout, : x.shape[-1]]
        MACS[0] += x.numel() // x.shape[-1] * w.shape[0] * w.shape[1]
        return F.linear(x, w, self.b[:cout])


class ResNet20:
    """He et al. 2016 §4.2 with option-A shortcuts, as models/resnet20.slim."""

    def __init__(self, classes, device):
        self.params = {"decay": [], "other": [], "bn": []}
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
        self.params = {"decay": [], "other": [], "bn": []}
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


class MobileNetV2:
    """torchvision's mobilenet_v2, as models/mobilenet_v2.slim: the stem's stride 2 and
    every block's stride as at 224x224, whatever the input size."""

    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, classes, device):
        self.params = {"decay": [], "other": [], "bn": []}
        p = self.params
        self.stem, self.stem_bn = Conv(3, 32, 3, 2, p, device), BN(32, p, device)
        self.blocks = []
        cin = 32
        for t, c, n, stride in self.SETTINGS:
            for i in range(n):
                s = stride if i == 0 else 1
                hidden = cin * t
                expand = None if t == 1 else (hidden, Conv(cin, hidden, 1, 1, p, device), BN(hidden, p, device))
                dw = (Conv(hidden, hidden, 3, s, p, device, depthwise=True), BN(hidden, p, device))
                project = (Conv(hidden, c, 1, 1, p, device), BN(c, p, device))
                self.blocks.append((c, s == 1 and cin == c, expand, dw, project))
                cin = c
        self.last, self.last_bn = Conv(cin, 1280, 1, 1, p, device), BN(1280, p, device)
        self.fc = Linear(1280, classes, p, device)
        self.training = True

    def __call__(self, x, w):
        x = F.relu6(self.stem_bn(self.stem(x, make_divisible(32 * w))))
        for c, residual, expand, (dw, dw_bn), (project, project_bn) in self.blocks:
            y = x
            if expand is not None:
                hidden, conv, bn = expand
                y = F.relu6(bn(conv(y, make_divisible(hidden * w))))
            y = F.relu6(dw_bn(dw(y)))
            y = project_bn(project(y, make_divisible(c * w)))
            x = y + x if residual else y
        x = F.relu6(self.last_bn(self.last(x, 1280)))
        x = F.dropout(x.mean((2, 3)), 0.2, self.training)
        return self.fc(x)


class ViT:
    """models/vit_fmnist.slim: 4x4 patches (a conv of stride 4) with learned position
    embeddings, blocks of pre-norm multi-head self-attention and a GELU MLP, each around a
    residual, and a linear classifier on the mean token. Every weight is sliced to the
    active widths: the embedding (the residual stream), whole heads, the MLP."""

    def __init__(self, classes, device, embed=96, heads=4, mlp=192, depth=4, patch=4, size=28):
        self.params = {"decay": [], "other": [], "bn": []}
        p = self.params
        self.embed, self.heads, self.mlp = embed, heads, mlp
        self.patch = torch.empty(embed, 1, patch, patch, device=device)
        torch.nn.init.kaiming_normal_(self.patch, mode="fan_out", nonlinearity="relu")
        self.patch.requires_grad_()
        self.patch_b = torch.zeros(embed, device=device, requires_grad=True)
        self.pos = (0.02 * torch.randn(1, (size // patch) ** 2, embed, device=device)).requires_grad_()
        p["decay"].append(self.patch)
        p["other"] += [self.patch_b, self.pos]

        def norm():
            g = torch.ones(embed, device=device, requires_grad=True)
            b = torch.zeros(embed, device=device, requires_grad=True)
            p["other"] += [g, b]
            return g, b

        self.blocks = [(norm(), Linear(embed, embed, p, device), Linear(embed, embed, p, device),
                        Linear(embed, embed, p, device), Linear(embed, embed, p, device), norm(),
                        Linear(embed, mlp, p, device), Linear(mlp, embed, p, device)) for _ in range(depth)]
        self.norm = norm()
        self.fc = Linear(embed, classes, p, device)
        self.training = True

    def __call__(self, x, w):
        c = channels(self.embed, w)
        heads = channels(self.heads, w)
        a, hidden = heads * (self.embed // self.heads), channels(self.mlp, w)
        x = F.conv2d(x, self.patch[:c], self.patch_b[:c], stride=self.patch.shape[2])
        b, _, h, ww = x.shape
        MACS[0] += b * c * self.patch.shape[2] * self.patch.shape[3] * h * ww
        x = x.flatten(2).transpose(1, 2) + self.pos[:, :, :c]

        def ln(x, gb):
            return F.layer_norm(x, (x.shape[-1],), gb[0][:c], gb[1][:c], 1e-5)

        for n1, q, k, v, proj, n2, up, down in self.blocks:
            y = ln(x, n1)
            q_, k_, v_ = (f(y, a).unflatten(2, (heads, -1)).transpose(1, 2) for f in (q, k, v))
            y = F.scaled_dot_product_attention(q_, k_, v_).transpose(1, 2).flatten(2)
            x = x + proj(y, c)
            x = x + down(F.gelu(up(ln(x, n2), hidden)), c)
        return self.fc(ln(x, self.norm).mean(1))


def set_mode(net, mode):
    for bn in net.params["bn"]:
        bn.mode = mode
    net.training = mode != "eval"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=["resnet20", "resnet50", "mobilenet_v2", "vit_fmnist"])
    ap.add_argument("--scheme", choices=["us", "fixed"], default="us")
    ap.add_argument("--width", type=float, default=1.0, help="the width of --scheme fixed")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, help="input size (default 224 for resnet50, 28 for vit_fmnist, else 32)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    ap.add_argument("--classes", type=int, help="classes (default 10 for resnet20 and mobilenet_v2, 1000 for resnet50)")
    ap.add_argument("--infer-widths", default="", help="widths whose inference is timed, comma-separated")
    ap.add_argument("--macs", type=float, metavar="W", help="print the multiply-adds of width W and exit")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    random.seed(0)
    dev = torch.device(a.device)
    classes, size, grey = {"resnet20": (10, 32, False), "resnet50": (1000, 224, False),
                           "mobilenet_v2": (10, 32, False), "vit_fmnist": (10, 28, True)}[a.model]
    classes, size, cin = a.classes or classes, a.size or size, 1 if grey else 3
    net = {"resnet20": ResNet20, "resnet50": ResNet50, "mobilenet_v2": MobileNetV2, "vit_fmnist": lambda classes, dev: ViT(classes, dev, size=size)}[a.model](classes, dev)
    if a.macs is not None:
        with torch.no_grad():
            net(torch.randn(2, cin, size, size, device=dev), a.macs)  # two images: BN needs more than one
        print(json.dumps({"model": a.model, "width": a.macs, "macs": MACS[0] // 2}))
        return
    opt = torch.optim.SGD([{"params": net.params["decay"], "weight_decay": 5e-5},
                           {"params": net.params["other"], "weight_decay": 0.0}],
                          lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(a.batch, cin, size, size, device=dev)
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
    infer = {}
    for w in [float(v) for v in a.infer_widths.split(",") if v]:
        with torch.inference_mode():
            set_mode(net, "calibrate")
            net(x, w)
            set_mode(net, "eval")
            net(x, w).sum().item()
            start = time.perf_counter()
            for _ in range(a.steps):
                net(x, w).sum().item()
            infer[str(w)] = a.batch * a.steps / (time.perf_counter() - start)
        set_mode(net, "train")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(json.dumps({"framework": f"pytorch {torch.__version__} eager", "model": a.model, "scheme": a.scheme,
                      "device": name, "batch": a.batch, "size": size, "steps": a.steps,
                      "img_per_s": a.batch / step_s, "step_s": step_s, "infer_img_per_s": infer}))


if __name__ == "__main__":
    main()
