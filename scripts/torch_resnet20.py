"""ResNet-20 (He et al. 2016, section 4.2) in PyTorch: the CIFAR network with option-A
shortcuts that models/resnet20.slim declares. scripts/onnx_graphs.py exports it for the
import tests; scripts/pretrained_resnet20.py trains it for the fine-tuning story."""

import torch
import torch.nn.functional as F


class BasicA(torch.nn.Module):
    """ResNet-20's basic block with an option-A shortcut (zero channels appended)."""

    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(c)
        self.conv2 = torch.nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(c)
        self.stride, self.pad = stride, c - cin

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        skip = x
        if self.stride != 1 or self.pad:
            skip = F.pad(
                x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.pad)
            )
        return F.relu(y + skip)


class ResNet20(torch.nn.Module):
    """16-32-64 channels, three blocks per stage."""

    def __init__(self, classes=10, in_channels=3):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for c, stride in [(16, 1), (32, 2), (64, 2)]:
            for i in range(3):
                blocks.append(BasicA(cin, c, stride if i == 0 else 1))
                cin = c
        self.blocks = torch.nn.Sequential(*blocks)
        self.fc = torch.nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
