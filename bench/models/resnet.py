"""ResNet-18 as in the similarity-regulariser reference code (Li et al.; Attias et al.).

Differences from torchvision's ImageNet ResNet-18: a 7x7 stride-1 stem without max-pool
(for 28-32 px inputs), 1 or 3 input channels, global average pooling (equal to the
reference's 4x4 average pool on 32x32 inputs).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

import bench.validate as validate
from bench.registry import MODELS


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    taps = {"stem": "stem", "stage1": "layer1", "stage2": "layer2", "stage3": "layer3", "stage4": "layer4"}

    def __init__(self, in_channels: int, num_classes: int, width: int = 64):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 7, 1, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        layers, c_in = [], width
        for i, c_out in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)))
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


@MODELS.register("resnet18", description="ResNet-18 of the regulariser reference code: 7x7 stride-1 stem, no max-pool, 1 or 3 channels")
def resnet18(in_channels: int, num_classes: int, width: int = 64) -> nn.Module:
    validate.integer(width, "model 'resnet18': width", 1, 4096)
    return ResNet18(in_channels, num_classes, width)
