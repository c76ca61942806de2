"""Reference relevances from zennit 1.0.0, the reference for LRP, for the parity tests (tests/methods/lrp_parity.rs).

zennit 1.0.0 differs from 0.4.6 (tools/fixtures_lrp.py, kept for the classic Gamma rule and for zennit-crp, which
pins zennit <= 0.4.6) in two ways that matter here:
  * its Gamma rule is the generalized one (five modified passes; outputs z > 0 divided by
    (W + γW⁺)a⁺ + b + γb⁺ + (W + γW⁻)a⁻, outputs z < 0 by (W + γW⁻)a⁺ + b + γb⁻ + (W + γW⁺)a⁻);
  * its MergeBatchNorm sets the neutralised BatchNorm's eps to 0, so the folded model computes the original function
    exactly (0.4.6 kept a 1/sqrt(1 + eps); fixtures_lrp.py patches that), and a BatchNorm left unfolded gets Pass.

Writes tests/fixtures/lrp/z1_<model>.safetensors for

  tiny_vgg, tiny_resnet, vgg11, resnet18   as in tools/fixtures_lrp.py (same reference weights, same inputs)
  tiny_bottleneck  torchvision's `Bottleneck` block at reduced width: conv-BN-ReLU stem (8 channels), a Bottleneck
                   8 -> 16 with a 1x1 conv + BN downsampling shortcut, a stride-2 Bottleneck 16 -> 32 (stride in the
                   3x3 conv, as torchvision's v1.5) with a strided downsampling shortcut, a Bottleneck 32 -> 32 with
                   an identity shortcut, global avg-pool, linear (5 classes); hashed reference weights
                   (`load_random_reference_weights`), so BatchNorm statistics are pseudo-random; input [2, 3, 16, 16]
  tiny_densenet    torchvision's `DenseNet` class at reduced size (growth 4, blocks (2, 2, 2, 2), 8 initial features,
                   bn_size 2, 5 classes); hashed reference weights; input [1, 3, 32, 32]. zennit 1.0's
                   SequentialMergeBatchNorm cannot canonize a DenseNet (it pairs each BatchNorm with the convolution
                   before it in module order, and a BatchNorm after a concatenation fails with a size mismatch), so
                   the BatchNorms that directly follow their convolution (`features.norm0`, every dense layer's
                   `norm2`) are merged with zennit's NamedMergeBatchNorm, and the others (each dense layer's `norm1`
                   and the transitions' `norm` after a concatenation, `features.norm5`) get zennit 1.0's Pass rule

Keys of each file:
  input, logits [N, K], targets [N] (as float), zbox_low, zbox_high     as in tools/fixtures_lrp.py
  lrp/<composite>      input relevance [N, C, H, W] for the four composites, one-hot × logit start, zennit's
                       ResNetCanonizer for the ResNets (SequentialMergeBatchNorm for the VGGs)
  lrp64/<composite>    the same computed in float64 (stored as float32)

Run: /tmp/z1venv/bin/python tools/fixtures_lrp_zennit1.py   (zennit 1.0.0 needs Python >= 3.11.11 by its metadata;
install it with `pip install --ignore-requires-python zennit==1.0.0`; a few seconds)
"""
import os
import sys

import numpy as np
import torch
import torchvision
from safetensors.numpy import save_file
from torchvision.models.resnet import Bottleneck
from zennit.canonizers import NamedMergeBatchNorm, SequentialMergeBatchNorm
from zennit.composites import EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlus, EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer
from zennit.version import __version__ as ZENNIT_VERSION

sys.path.insert(0, os.path.dirname(__file__))
from reference_weights import load_random_reference_weights, load_reference_weights  # noqa: E402
from fixtures_lrp import HIGH, LOW, OUT, TinyResNet, TinyVGG, lrp  # noqa: E402

assert ZENNIT_VERSION == "1.0.0", f"needs zennit 1.0.0, found {ZENNIT_VERSION}"


class TinyBottleneckResNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.relu = torch.nn.ReLU()

        def down(cin, cout, stride):
            return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                       torch.nn.BatchNorm2d(cout))

        self.layer1 = torch.nn.Sequential(Bottleneck(8, 4, downsample=down(8, 16, 1)))
        self.layer2 = torch.nn.Sequential(Bottleneck(16, 8, stride=2, downsample=down(16, 32, 2)), Bottleneck(32, 8))
        self.avgpool = torch.nn.AdaptiveAvgPool2d((1, 1))
        self.fc = torch.nn.Linear(32, 5)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet_canonizer():
    return [ResNetCanonizer()]


def vgg_canonizer():
    return [SequentialMergeBatchNorm()]


def densenet_canonizer(model):
    """zennit's BatchNorm merge for every BatchNorm that directly follows a convolution."""
    modules = dict(model.named_modules())
    pairs = [((name[:-len("norm0")] + "conv0",), name) if name.endswith("norm0") else
             ((name[:-len("norm2")] + "conv1",), name)
             for name in modules if name.endswith(("norm0", "norm2"))]
    return lambda: [NamedMergeBatchNorm(pairs)]


def tiny_densenet():
    return torchvision.models.DenseNet(growth_rate=4, block_config=(2, 2, 2, 2), num_init_features=8, bn_size=2,
                                       num_classes=5)


def composites(canonizers, dtype=torch.float32):
    """zennit 1.0.0's four composites with their default parameters."""
    low = torch.from_numpy(LOW).reshape(1, 3, 1, 1).to(dtype)
    high = torch.from_numpy(HIGH).reshape(1, 3, 1, 1).to(dtype)
    return {
        "epsilon-plus": EpsilonPlus(canonizers=canonizers()),
        "epsilon-plus-flat": EpsilonPlusFlat(canonizers=canonizers()),
        "epsilon-gamma-box": EpsilonGammaBox(low=low, high=high, canonizers=canonizers()),
        "epsilon-alpha2-beta1": EpsilonAlpha2Beta1(canonizers=canonizers()),
    }


def make(name, make_model, x, canonizers, weights=load_reference_weights):
    model = weights(make_model()).eval()
    with torch.no_grad():
        logits = model(x)
    targets = logits.argmax(1)
    out = {"input": x.numpy(), "logits": logits.numpy(), "targets": targets.float().numpy(),
           "zbox_low": LOW, "zbox_high": HIGH}
    for cname, comp in composites(canonizers).items():
        out[f"lrp/{cname}"] = lrp(model, comp, x, targets).numpy()
    model64 = weights(make_model()).double().eval()
    for cname, comp in composites(canonizers, torch.float64).items():
        out[f"lrp64/{cname}"] = lrp(model64, comp, x.double(), targets).numpy()
    for cname in composites(canonizers):
        a, b = out[f"lrp/{cname}"], out[f"lrp64/{cname}"]
        print(f"  {name} {cname}: zennit float32 vs float64 max rel {np.abs(a - b).max() / np.abs(b).max():.2e}, "
              f"sum R {b.sum(axis=(1, 2, 3))} for logits {logits[torch.arange(len(targets)), targets].tolist()}")
    out = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
    path = os.path.join(OUT, f"z1_{name}.safetensors")
    save_file(out, path, metadata={"generator": "tools/fixtures_lrp_zennit1.py", "zennit": ZENNIT_VERSION,
                                   "torch": torch.__version__})
    print(f"{name}: targets {targets.tolist()}, {os.path.getsize(path) // 1024} KiB")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    # The same inputs as tools/fixtures_lrp.py.
    g = torch.Generator().manual_seed(1234)
    small = torch.randn(2, 3, 16, 16, generator=g)
    big = torch.randn(1, 3, 32, 32, generator=g)
    make("tiny_vgg", TinyVGG, small, vgg_canonizer)
    make("tiny_resnet", TinyResNet, small, resnet_canonizer)
    make("vgg11", lambda: torchvision.models.vgg11(num_classes=10), big, vgg_canonizer)
    make("resnet18", lambda: torchvision.models.resnet18(num_classes=10), big, resnet_canonizer)
    make("tiny_bottleneck", TinyBottleneckResNet, small, resnet_canonizer, weights=load_random_reference_weights)
    make("tiny_densenet", tiny_densenet, big, densenet_canonizer(tiny_densenet()),
         weights=load_random_reference_weights)


if __name__ == "__main__":
    main()
