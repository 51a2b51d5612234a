"""A small 4-convolution CNN for CPU protocols (~0.2 M parameters at width 32)."""

from __future__ import annotations

from torch import nn

import bench.validate as validate
from bench.registry import MODELS


def _conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    taps = {"stem": "stem", "stage1": "stage1", "stage2": "stage2", "stage3": "stage3"}

    def __init__(self, in_channels: int, num_classes: int, width: int = 32):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(in_channels, width))
        self.stage1 = nn.Sequential(*_conv_bn(width, width), nn.MaxPool2d(2))
        self.stage2 = nn.Sequential(*_conv_bn(width, 2 * width))
        self.stage3 = nn.Sequential(*_conv_bn(2 * width, 2 * width), nn.MaxPool2d(2))
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(2 * width * 16, 128), nn.ReLU(inplace=True), nn.Linear(128, num_classes)
        )

    def forward(self, x):
        return self.head(self.stage3(self.stage2(self.stage1(self.stem(x)))))


@MODELS.register("small_cnn", description="4-conv CNN with BatchNorm (~0.2 M params at width 32): the CPU protocols' model")
def small_cnn(in_channels: int, num_classes: int, width: int = 32) -> nn.Module:
    validate.integer(width, "model 'small_cnn': width", 1, 4096)
    return SmallCNN(in_channels, num_classes, width)
