"""The networks of paper §4: CIFAR-style ResNet (6n+2), VGG16-BN for 32×32 inputs, and the small
nets of the CPU scale (MLP, small CNN with or without BatchNorm).

Every network takes ``activation`` — ``"relu"`` or ``"swish"`` with parameter ``beta``,
Swish(x) = x / (1 + exp(−βx)) (paper §4.2, "Perturbed SGD with Swish") — and 1 or 3 input
channels (Fashion-MNIST or CIFAR-10).  Networks with pooling layers take ``pool`` — ``"max"`` or
``"avg"``: with Swish and average pooling the network is smooth, which the fixed-learning-rate
experiment (Fig. 2 right) needs.

ResNet shortcut: the paper cites He et al. [36], whose CIFAR ResNet uses parameter-free shortcuts
(option A: stride-2 subsampling and zero-padded channels); the authors' released code uses a
1×1 convolution + BatchNorm (option B).  Both are here (``shortcut="identity"`` / ``"conv"``);
the default is ``"conv"``, the release's, which produced the paper's numbers.

Build with :func:`build_model`; ``seed`` makes the initialisation independent of the global RNG.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("relu", "swish")
POOLS = ("max", "avg")
SHORTCUTS = ("conv", "identity")
MODELS = ("resnet<6n+2> (e.g. resnet8, resnet20, resnet56)", "vgg16_bn", "mlp", "cnn", "cnn_bn")

_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class Swish(nn.Module):
    """Swish(x) = x / (1 + exp(−βx)) = x·σ(βx) (paper §4.2, [38]); β → ∞ gives ReLU."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


def make_activation(activation: str = "relu", beta: float = 1.0) -> nn.Module:
    """A fresh activation module: ``"relu"`` or ``"swish"`` (with ``beta`` > 0)."""
    if activation == "relu":
        return nn.ReLU()
    if activation == "swish":
        if isinstance(beta, bool) or not isinstance(beta, int | float) or not beta > 0:
            raise ValueError(f"beta={beta!r} is not allowed; it must be a positive number")
        return Swish(beta)
    raise ValueError(f"activation={activation!r} is not allowed; choose one of {list(ACTIVATIONS)}")


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """Mean over the spatial dimensions, (N, C, H, W) → (N, C).  A plain mean rather than
    ``adaptive_avg_pool2d``, whose CUDA backward has no deterministic implementation."""
    return x.mean(dim=(2, 3))


def _pool(pool: str) -> nn.Module:
    if pool == "max":
        return nn.MaxPool2d(2)
    if pool == "avg":
        return nn.AvgPool2d(2)
    raise ValueError(f"pool={pool!r} is not allowed; choose one of {list(POOLS)}")


# ----------------------------------------------------------------------------------------- ResNet
class _PadShortcut(nn.Module):
    """He et al.'s option A: subsample by 2 and zero-pad the new channels (no parameters)."""

    def __init__(self, planes: int):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, activation: str, beta: float, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act1 = make_activation(activation, beta)
        self.act2 = make_activation(activation, beta)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            if shortcut == "conv":
                self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(planes))
            else:
                self.shortcut = _PadShortcut(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet of depth 6n+2 (He et al. §4.2): 3 stages of n basic blocks, 16/32/64 channels."""

    def __init__(self, depth: int, *, in_channels: int = 3, num_classes: int = 10, activation: str = "relu",
                 beta: float = 1.0, shortcut: str = "conv", widths: Sequence[int] = (16, 32, 64)):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth={depth!r} is not allowed; a CIFAR ResNet has depth 6n+2 "
                             "(8, 20, 56, ...)")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut={shortcut!r} is not allowed; choose one of {list(SHORTCUTS)}")
        n = (depth - 2) // 6
        self.depth = depth
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.act = make_activation(activation, beta)
        in_planes = widths[0]
        self.stages: list[str] = []
        for stage, planes in enumerate(widths):
            blocks = []
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(in_planes, planes, stride, activation, beta, shortcut))
                in_planes = planes
            # stage names as in the authors' release and the reference CIFAR ResNets: their
            # state dicts (conv1, bn1, layer1..3.<block>.conv1/bn1/conv2/bn2/shortcut, linear) load here
            name = f"layer{stage + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stages.append(name)
        self.linear = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        for name in self.stages:
            out = getattr(self, name)(out)
        return self.linear(global_avg_pool(out))


# -------------------------------------------------------------------------------------------- VGG
class VGG(nn.Module):
    """VGG16 with BatchNorm for 32×32 inputs (the CIFAR variant: after five 2×2 poolings the map is
    1×1×512, followed by one linear classifier)."""

    def __init__(self, cfg: Sequence[int | str] = _VGG16, *, in_channels: int = 3, num_classes: int = 10,
                 activation: str = "relu", beta: float = 1.0, pool: str = "max"):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for v in cfg:
            if v == "M":
                layers.append(_pool(pool))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.BatchNorm2d(int(v)),
                           make_activation(activation, beta)]
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(global_avg_pool(self.features(x)))


# -------------------------------------------------------------------------------------- small nets
class MLP(nn.Module):
    """Fully connected net: flatten → (linear → activation) per hidden width → linear."""

    def __init__(self, in_features: int, num_classes: int = 10, hidden: Sequence[int] = (128, 64), *,
                 activation: str = "relu", beta: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        d = in_features
        for h in hidden:
            layers += [nn.Linear(d, int(h)), make_activation(activation, beta)]
            d = int(h)
        layers.append(nn.Linear(d, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Small VGG-style CNN: per width a 3×3 convolution (+ BatchNorm) → activation → 2×2 pooling,
    then global average pooling and a linear classifier."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: Sequence[int] = (16, 32), *,
                 batchnorm: bool = False, activation: str = "relu", beta: float = 1.0, pool: str = "max"):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers.append(nn.Conv2d(c, int(w), 3, padding=1, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(int(w)))
            layers += [make_activation(activation, beta), _pool(pool)]
            c = int(w)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(global_avg_pool(self.features(x)))


# ---------------------------------------------------------------------------------------- factory
def _check_channels(in_channels: int) -> None:
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels={in_channels!r} is not allowed; choose one of [1, 3]")


def validate_model_name(name: str) -> str:
    """Raise ``ValueError`` naming ``name`` and the allowed names unless it is a known model."""
    if not isinstance(name, str) or not (name in ("vgg16_bn", "mlp", "cnn", "cnn_bn") or _resnet_depth(name)):
        raise ValueError(f"model={name!r} is not allowed; choose one of {list(MODELS)}")
    return name


def _resnet_depth(name: str) -> int | None:
    m = re.fullmatch(r"resnet(\d+)", name)
    if m is None:
        return None
    depth = int(m.group(1))
    return depth if depth >= 8 and (depth - 2) % 6 == 0 else None


def build_model(name: str, *, in_channels: int, num_classes: int, activation: str = "relu", beta: float = 1.0,
                input_size: int = 32, pool: str = "max", shortcut: str = "conv",
                widths: Sequence[int] | None = None, hidden: Sequence[int] | None = None,
                seed: int | None = None) -> nn.Module:
    """Build a network of paper §4 by name.

    Parameters
    ----------
    name:
        ``"resnet<6n+2>"`` (``resnet8``, ``resnet20``, ``resnet56``, ...), ``"vgg16_bn"``, ``"mlp"``,
        ``"cnn"`` (no BatchNorm) or ``"cnn_bn"``.
    in_channels, num_classes:
        1 (Fashion-MNIST) or 3 (CIFAR-10) input channels; number of classes.
    activation, beta:
        ``"relu"`` or ``"swish"``; Swish(x) = x/(1+exp(−βx)) (paper §4.2).
    input_size:
        Side of the square input (used by the MLP's first layer; VGG16 needs 32).
    pool:
        ``"max"`` or ``"avg"`` for the networks with 2×2 pooling (VGG, small CNN).
    shortcut:
        ResNet shortcut, ``"conv"`` (1×1 conv + BN, the authors' release) or ``"identity"`` (He et al.'s A).
    widths, hidden:
        Channel widths (ResNet stages, small-CNN layers) and MLP hidden widths, to override defaults.
    seed:
        If given, the initialisation draws from ``torch.manual_seed(seed)`` inside a forked RNG, so it
        neither depends on nor changes the global generator.
    """
    validate_model_name(name)
    _check_channels(in_channels)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes={num_classes!r} is not allowed; it must be an integer >= 2")
    make_activation(activation, beta)  # validates activation and beta
    if pool not in POOLS:
        raise ValueError(f"pool={pool!r} is not allowed; choose one of {list(POOLS)}")
    if name == "vgg16_bn" and input_size != 32:
        raise ValueError(f"input_size={input_size!r} is not allowed for vgg16_bn; it needs 32×32 inputs "
                         "(pad Fashion-MNIST to 32 with instab.data.load(..., pad_to=32))")

    def build() -> nn.Module:
        depth = _resnet_depth(name)
        if depth is not None:
            return ResNet(depth, in_channels=in_channels, num_classes=num_classes, activation=activation,
                          beta=beta, shortcut=shortcut, widths=tuple(widths or (16, 32, 64)))
        if name == "vgg16_bn":
            return VGG(in_channels=in_channels, num_classes=num_classes, activation=activation, beta=beta,
                       pool=pool)
        if name == "mlp":
            return MLP(in_channels * input_size * input_size, num_classes, tuple(hidden or (128, 64)),
                       activation=activation, beta=beta)
        return SmallCNN(in_channels, num_classes, tuple(widths or (16, 32)), batchnorm=name == "cnn_bn",
                        activation=activation, beta=beta, pool=pool)

    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
