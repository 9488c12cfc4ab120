#!/usr/bin/env python3
"""torchvision's ImageFolder + DataLoader with the seeds' ImageNet training transforms, timed.

    python3 scripts/torch_loader.py DIR [--workers N] [--batch 128] [--batches 20] [--size 224]
        [--crop-scale 0.08]

Prints one JSON line: decoded, augmented images per second of training batches drawn as
fast as they come (after one warm-up batch, which also starts the workers). The
transforms are those of the S-/US-Nets ImageNet recipe, as slimc's `--augment inception`:
RandomResizedCrop(size, scale=(crop_scale, 1)), ColorJitter(0.4, 0.4, 0.4), AlexNet's PCA
lighting noise (0.1), RandomHorizontalFlip, ToTensor, Normalize. Used by
scripts/compare-loader.sh.
"""
import argparse
import json
import time

import torch
from torchvision import datasets, transforms

EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])


class Lighting:
    """AlexNet's PCA lighting noise on a [3, H, W] tensor in [0, 1]."""

    def __init__(self, std):
        self.std = std

    def __call__(self, img):
        alpha = torch.randn(3) * self.std
        return img + (EIGVEC @ (alpha * EIGVAL)).view(3, 1, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--crop-scale", type=float, default=0.08)
    a = ap.parse_args()
    torch.set_num_threads(1)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(a.size, scale=(a.crop_scale, 1.0)),
        transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        Lighting(0.1),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    data = datasets.ImageFolder(f"{a.dir}/train", tf)
    loader = torch.utils.data.DataLoader(
        data, batch_size=a.batch, shuffle=True, num_workers=a.workers, drop_last=True,
        persistent_workers=a.workers > 0, prefetch_factor=2 if a.workers > 0 else None,
    )
    images = 0
    start = None
    while True:
        for k, (x, _) in enumerate(loader):
            if start is None:
                start = time.perf_counter()
                continue
            images += x.shape[0]
            if images >= a.batches * a.batch:
                break
        if images >= a.batches * a.batch:
            break
    seconds = time.perf_counter() - start
    print(json.dumps({"workers": a.workers, "img_per_s": images / seconds, "images": images}))


if __name__ == "__main__":
    main()
