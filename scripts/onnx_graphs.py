"""Exports the graphs `slimc import` is tested on (tests/import.rs) with PyTorch's own
ONNX exporters, and commits them without their weights.

Each model is exported twice: by the TorchScript exporter (`dynamo=False`, opset 17, BN
folded into the convs as in eval mode) and by the default one (opset 20, weights in an
external file). Then every float tensor's values (but scalars: a clip's bounds) are dropped and the tensor made external
(`NAME.onnx.data`, offsets in order), so a graph is a few kilobytes; the test writes
random values of the right shapes to that file before importing. Integer tensors (the
shapes reshapes read) stay in the graph.

Needs torch, torchvision and onnxscript (the default exporter):
    PYTHONPATH=DIR python3 scripts/onnx_graphs.py [MODEL ...]
"""

import json
import os
import sys
import warnings

import onnx
import torch
import torch.nn.functional as F
import torchvision
from onnx import TensorProto, numpy_helper
from torch_resnet20 import ResNet20

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "onnx")

TORCHVISION = [
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "regnet_x_400mf",
    "shufflenet_v2_x1_0",
    "densenet121",
    "convnext_tiny",
]


class EluNet(torch.nn.Module):
    """A net with an op slimc has no counterpart for (ELU): the importer must refuse it."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(F.elu(self.conv(x)), 1), 1))


class SplitNet(torch.nn.Module):
    """Channels taken by position, which only holds at one count: an unequal split and a
    trim of a concatenation (GhostNet's `x[:, :oup]`). The importer makes the maps they read
    fixed, with a warning; the stem and the last conv still slim."""

    def __init__(self):
        super().__init__()
        conv = lambda i, o, k=1, g=1: torch.nn.Conv2d(i, o, k, padding=k // 2, groups=g, bias=False)
        bn = torch.nn.BatchNorm2d
        self.stem, self.bn0 = conv(3, 16, 3), bn(16)
        self.expand, self.bn1 = conv(16, 24), bn(24)
        self.a, self.bn_a = conv(8, 8, 3), bn(8)
        self.b, self.bn_b = conv(16, 16, 3, 16), bn(16)
        self.last, self.bn2 = conv(20, 32), bn(32)
        self.fc = torch.nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        a, b = torch.split(F.relu(self.bn1(self.expand(x))), [8, 16], dim=1)
        y = torch.cat([F.relu(self.bn_a(self.a(a))), F.relu(self.bn_b(self.b(b)))], 1)[:, :20]
        y = F.relu(self.bn2(self.last(y)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def model(name):
    if name == "resnet20":
        return ResNet20(), 32
    if name == "elu_net":
        return EluNet(), 32
    if name == "split_net":
        return SplitNet(), 32
    return getattr(torchvision.models, name)(weights=None), 224


def strip(path):
    """Drops every float tensor's values; the tensor points into PATH.data instead.
    Returns the data file's length. Shapes of intermediate values, documentation strings
    and metadata go too (the importer reads none of them)."""
    m = onnx.load(path, load_external_data=True)
    del m.graph.value_info[:]
    del m.metadata_props[:]
    for n in m.graph.node:
        n.doc_string = ""
        del n.metadata_props[:]
    location = os.path.basename(path) + ".data"
    offset = 0
    for t in m.graph.initializer:
        values = numpy_helper.to_array(t)
        if t.data_type != TensorProto.FLOAT or values.size <= 1:
            continue
        length = values.size * 4
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        for k, v in [("location", location), ("offset", str(offset)), ("length", str(length))]:
            e = t.external_data.add()
            e.key, e.value = k, v
        offset += length
    if os.path.exists(path + ".data"):
        os.remove(path + ".data")
    onnx.save(m, path)
    return offset


def export(name):
    net, size = model(name)
    net.eval()
    torch.manual_seed(0)
    # BN as after training: at its initial values a folded BN leaves a zero bias, which the
    # default exporter's optimiser drops, and the conv would no longer show it had a BN.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        # Likewise a zero bias (a classifier's, a squeeze-excite's) would be dropped.
        for p in net.parameters():
            if not p.any():
                p.normal_(0.0, 0.01)
    x = torch.randn(1, 3, size, size)
    names = {"input_names": ["input"], "output_names": ["logits"]}
    ts = os.path.join(OUT, f"{name}.ts.onnx")
    torch.onnx.export(net, (x,), ts, dynamo=False, opset_version=17, **names)
    dy = os.path.join(OUT, f"{name}.dynamo.onnx")
    torch.onnx.export(net, (x,), dy, external_data=True, **names)
    # The PyTorch model's parameter count (BN's γ and β included): what the imported .slim
    # must count at full width.
    params = sum(p.numel() for p in net.parameters())
    return {"params": params, "ts_data": strip(ts), "dynamo_data": strip(dy)}


def main():
    warnings.filterwarnings("ignore")
    os.makedirs(OUT, exist_ok=True)
    manifest_path = os.path.join(OUT, "manifest.json")
    manifest = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
    for name in sys.argv[1:] or TORCHVISION + ["resnet20", "elu_net", "split_net"]:
        manifest[name] = export(name)
        print(name, manifest[name])
    with open(manifest_path, "w") as f:
        json.dump(dict(sorted(manifest.items())), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
