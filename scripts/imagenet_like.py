#!/usr/bin/env python3
"""An ImageNet-like image folder for loader benchmarks and short training runs.

    python3 scripts/imagenet_like.py OUT [--classes 10] [--train 300] [--val 50] [--seed 0]

Writes OUT/train/<class>/*.jpg and OUT/val/<class>/*.jpg: JPEGs of quality 90 at the
sizes of typical ImageNet photographs (500x375 mostly, some portrait 375x500, some
500x333 and 640x480), each a textured, noisy background with one large object whose shape
and colour family make the class (10 classes: 5 shapes x 2 colour families; more classes
cycle through further hues). A small network learns them well above chance even through
a random resized crop; a few grey (mode L) images are mixed in, as ImageNet has them.
Needs numpy and Pillow.
"""
import argparse
import colorsys
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ["disc", "square", "triangle", "cross", "ring"]
SIZES = [(500, 375)] * 6 + [(375, 500)] * 2 + [(500, 333), (640, 480)]


def picture(rng, label, classes):
    w, h = SIZES[rng.integers(len(SIZES))]
    shape = SHAPES[label % len(SHAPES)]
    family = label // len(SHAPES)
    families = max(1, -(-classes // len(SHAPES)))
    hue = (family / families + rng.uniform(-0.04, 0.04)) % 1.0
    # Background: a smooth random gradient in another hue, plus texture noise.
    bg_hue = (hue + 0.5 + rng.uniform(-0.2, 0.2)) % 1.0
    base = np.array(colorsys.hsv_to_rgb(bg_hue, rng.uniform(0.1, 0.4), rng.uniform(0.3, 0.8))) * 255
    yy, xx = np.mgrid[0:h, 0:w]
    grad = (xx / w * rng.uniform(-60, 60) + yy / h * rng.uniform(-60, 60))[..., None]
    noise = rng.normal(0, 18, (h, w, 3))
    img = Image.fromarray(np.clip(base + grad + noise, 0, 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    draw = ImageDraw.Draw(img)
    colour = tuple(int(v * 255) for v in colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)))
    r = rng.uniform(0.25, 0.4) * min(w, h)
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == "disc":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif shape == "cross":
        t = r / 3
        draw.rectangle([cx - r, cy - t, cx + r, cy + t], fill=colour)
        draw.rectangle([cx - t, cy - r, cx + t, cy + r], fill=colour)
    else:
        draw.ellipse(box, outline=colour, width=int(r / 3))
    if rng.random() < 0.02:
        img = img.convert("L")
    return img


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--train", type=int, default=300, help="training images per class")
    ap.add_argument("--val", type=int, default=50, help="validation images per class")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if os.path.exists(a.out):
        raise SystemExit(f"imagenet_like.py: {a.out} exists; choose another directory")
    rng = np.random.default_rng(a.seed)
    for split, n in [("train", a.train), ("val", a.val)]:
        for label in range(a.classes):
            d = os.path.join(a.out, split, f"c{label:03d}")
            os.makedirs(d)
            for i in range(n):
                picture(rng, label, a.classes).save(os.path.join(d, f"{split}_{label:03d}_{i:05d}.JPEG"), quality=90)
    print(f"{a.out}: {a.classes} classes, {a.train} training and {a.val} validation images each")


if __name__ == "__main__":
    main()
