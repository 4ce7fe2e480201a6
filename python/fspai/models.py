"""Models used in the pruning-at-initialization literature, small enough to build on a CPU.

* ``"mlp"``: fully connected ReLU network (``hidden`` sizes configurable).
* ``"cnn1d"``: the MNIST-1D convolutional baseline (Greydanus 2020: three Conv1d layers with
  25 channels, stride 2, then a linear head).
* ``"resnet18"``, ``"resnet34"``: CIFAR-style ResNets in the kuangliu/pytorch-cifar layout
  (3x3 stem with 64 channels, no max-pool, BasicBlocks, 1x1 conv + BN shortcuts); 21 and 37
  prunable layers.
* ``"vgg16"``: CIFAR VGG-16 with BatchNorm (configuration "D"); by default with the 3-layer dense
  head of the ITOP/sparselearning ``VGG16('D')`` used by the NeurIPS 2023 code (16 prunable
  layers); ``classifier="linear"`` gives the single-Linear head of kuangliu.

Every model built by :func:`build` has an ``input_shape`` attribute (per-sample shape, without
the batch dimension); data-free pruning (SynFlow) uses it.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["MLP", "CNN1D", "BasicBlock", "ResNet", "VGG16", "build", "init_weights", "MODELS",
           "resnet18", "resnet34"]


class MLP(nn.Module):
    """``Linear -> ReLU`` stack; inputs of any shape are flattened."""

    def __init__(self, input_dim: int, num_classes: int = 10, hidden: Sequence[int] = (300, 100),
                 bias: bool = True):
        super().__init__()
        dims = [int(input_dim), *map(int, hidden)]
        self.hidden = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.out(x)


class CNN1D(nn.Module):
    """MNIST-1D ConvBase: 3 x (Conv1d, ReLU) with stride 2, then Linear. Accepts ``(N, L)`` or
    ``(N, 1, L)`` input."""

    def __init__(self, input_length: int = 40, num_classes: int = 10, channels: int = 25):
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        length = int(input_length)
        for k in (5, 3, 3):
            length = (length + 2 - k) // 2 + 1
        if length < 1:
            raise ValueError(f"input_length {input_length} is too short for CNN1D")
        self.linear = nn.Linear(channels * length, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        return self.linear(x.flatten(1))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet (kuangliu layout). Global average pooling, so any input >= 8x8 works."""

    def __init__(self, num_blocks: Sequence[int], num_classes: int = 10, in_channels: int = 3,
                 width: int = 64):
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(width, num_blocks[0], 1)
        self.layer2 = self._make_layer(2 * width, num_blocks[1], 2)
        self.layer3 = self._make_layer(4 * width, num_blocks[2], 2)
        self.layer4 = self._make_layer(8 * width, num_blocks[3], 2)
        self.linear = nn.Linear(8 * width, num_classes)

    def _make_layer(self, planes: int, n: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def resnet18(num_classes: int = 10, **kw) -> ResNet:
    return ResNet([2, 2, 2, 2], num_classes, **kw)


def resnet34(num_classes: int = 10, **kw) -> ResNet:
    return ResNet([3, 4, 6, 3], num_classes, **kw)


_VGG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16(nn.Module):
    """CIFAR VGG-16 (config D) with BatchNorm after every conv.

    ``classifier="itop"`` (default): ``Linear(512,512) ReLU BN Linear(512,512) ReLU BN
    Linear(512,C)`` as in sparselearning's ``VGG16('D')``; ``"linear"``: ``Linear(512, C)``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, classifier: str = "itop"):
        super().__init__()
        layers = []
        c = in_channels
        for v in _VGG_D:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.BatchNorm2d(int(v)),
                           nn.ReLU(inplace=True)]
                c = int(v)
        self.features = nn.Sequential(*layers)
        if classifier == "itop":
            self.classifier = nn.Sequential(
                nn.Linear(512, 512), nn.ReLU(inplace=True), nn.BatchNorm1d(512),
                nn.Linear(512, 512), nn.ReLU(inplace=True), nn.BatchNorm1d(512),
                nn.Linear(512, num_classes),
            )
        elif classifier == "linear":
            self.classifier = nn.Sequential(nn.Linear(512, num_classes))
        else:
            raise ValueError(f"classifier must be 'itop' or 'linear', got {classifier!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


@torch.no_grad()
def init_weights(model: nn.Module, scheme: str = "paper") -> nn.Module:
    """Re-initialise ``model`` in place.

    ``"paper"``: the ICLR/NeurIPS 2023 code's init: conv ``N(0, sqrt(2 / (k_h k_w c_out)))``,
    BatchNorm ``gamma = 0.5, beta = 0``, Linear ``N(0, 0.01)``, biases 0. ``"kaiming"``: conv and
    linear Kaiming-normal (fan_out, ReLU), BN ``gamma = 1``. ``"pytorch"``: leave as built.
    """
    if scheme == "pytorch":
        return model
    if scheme not in ("paper", "kaiming"):
        raise ValueError(f"init must be 'pytorch', 'paper' or 'kaiming', got {scheme!r}")
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            n = math.prod(m.kernel_size) * m.out_channels
            m.weight.normal_(0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.Linear):
            if scheme == "paper":
                m.weight.normal_(0.0, 0.01)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            m.weight.fill_(0.5 if scheme == "paper" else 1.0)
            m.bias.zero_()
    return model


def _mlp(num_classes: int, input_shape, **kw) -> nn.Module:
    if input_shape is None:
        raise ValueError("build('mlp', ...) needs input_shape, e.g. (40,) for MNIST-1D or (64,) "
                         "for digits")
    return MLP(math.prod(input_shape), num_classes, **kw)


def _cnn1d(num_classes: int, input_shape, **kw) -> nn.Module:
    length = 40 if input_shape is None else int(input_shape[-1])
    return CNN1D(length, num_classes, **kw)


def _image(ctor: Callable[..., nn.Module]):
    def make(num_classes: int, input_shape, **kw) -> nn.Module:
        if input_shape is not None:
            kw.setdefault("in_channels", int(input_shape[0]))
        return ctor(num_classes=num_classes, **kw)
    return make


MODELS: Dict[str, Tuple[Callable[..., nn.Module], Optional[Tuple[int, ...]]]] = {
    "mlp": (_mlp, None),
    "cnn1d": (_cnn1d, (40,)),
    "resnet18": (_image(resnet18), (3, 32, 32)),
    "resnet34": (_image(resnet34), (3, 32, 32)),
    "vgg16": (_image(VGG16), (3, 32, 32)),
}


#: Keyword arguments each model accepts in :func:`build` (besides input_shape/init/seed).
_MODEL_OPTIONS: Dict[str, Dict[str, Tuple[type, ...]]] = {
    "mlp": {"hidden": (list, tuple), "bias": (bool,)},
    "cnn1d": {"channels": (int,)},
    "resnet18": {"width": (int,), "in_channels": (int,)},
    "resnet34": {"width": (int,), "in_channels": (int,)},
    "vgg16": {"classifier": (str,), "in_channels": (int,)},
}


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """``TypeError``/``ValueError`` for an option the model ``name`` does not take, a value of
    the wrong type, or sizes that are not positive integers (e.g. ``hidden=(0, 0)``)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _MODEL_OPTIONS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    known = _MODEL_OPTIONS[key]
    for k, v in options.items():
        if k not in known:
            raise TypeError(f"unknown option {k!r} for model {name!r}; known: {sorted(known)}")
        if isinstance(v, bool) and bool not in known[k] or not isinstance(v, known[k]):
            raise TypeError(f"model option {k!r} must be "
                            f"{' or '.join(t.__name__ for t in known[k])}, got {v!r}")
        sizes = list(v) if isinstance(v, (list, tuple)) else (
            [v] if isinstance(v, int) and not isinstance(v, bool) else [])
        if any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in sizes):
            raise ValueError(f"model option {k!r} must hold positive integers, got {v!r}")


def build(name: str, num_classes: int = 10, *, input_shape: Optional[Sequence[int]] = None,
          init: str = "pytorch", seed: Optional[int] = None, **kwargs) -> nn.Module:
    """Build a model by name: ``"mlp"``, ``"cnn1d"``, ``"resnet18"``, ``"resnet34"``, ``"vgg16"``.

    ``input_shape`` is the per-sample input shape (required for ``"mlp"``; defaults: ``(40,)`` for
    ``cnn1d``, ``(3, 32, 32)`` for the CIFAR models). ``init`` see :func:`init_weights`. With
    ``seed`` the weights are drawn from that seed without touching the global RNG. Extra keyword
    arguments go to the model class (e.g. ``hidden=(64, 64)`` for the MLP, ``channels=`` for
    cnn1d, ``classifier="linear"`` for VGG-16, ``width=`` for the ResNets).
    """
    key = name.lower().replace("-", "").replace("_", "")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    check_options(name, kwargs)
    ctor, default_shape = MODELS[key]
    shape = tuple(int(s) for s in input_shape) if input_shape is not None else default_shape

    def make() -> nn.Module:
        m = ctor(int(num_classes), shape, **kwargs)
        return init_weights(m, init)

    if seed is None:
        model = make()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = make()
    model.input_shape = shape
    return model
