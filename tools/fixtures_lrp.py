"""Reference relevances from zennit 0.4.6 and zennit-crp 0.6 for the LRP/CRP parity tests.

Writes tests/fixtures/lrp/<model>.safetensors for four models, all with the deterministic reference weights of
tools/reference_weights.py (so no weights are committed):

  tiny_vgg     conv-BN-ReLU-pool ×2, conv-ReLU, adaptive avg-pool 2×2, linear-ReLU-dropout-linear; input [2, 3, 16, 16]
  tiny_resnet  conv-BN-ReLU stem, a BasicBlock with identity shortcut, a stride-2 BasicBlock with a 1×1 conv + BN
               downsampling shortcut, global avg-pool, linear; input [2, 3, 16, 16]
  vgg11        torchvision vgg11 (10 classes); input [1, 3, 32, 32]
  resnet18     torchvision resnet18 (10 classes); input [1, 3, 32, 32]

Keys of each file:
  input, logits [N, K], targets [N] (as float)
  lrp/<composite>              input relevance [N, C, H, W], composite ∈ epsilon-plus, epsilon-plus-flat,
                               epsilon-gamma-box, epsilon-alpha2-beta1; starting relevance one-hot × logit
                               (ResNets: zennit's ResNetCanonizer, i.e. the `zennit` skip mode)
  lrp64/<composite>            the same computed by zennit in float64 (stored as float32): the accurate value, which
                               tells float32 round-off (ours and zennit's) apart from real differences where the
                               relevance is ill-conditioned (near-zero denominators of the Gamma rule and of the
                               signed Norm rule at ResNet sums)
  zbox_low, zbox_high          per-channel bounds used by epsilon-gamma-box (ImageNet normalisation of 0 and 1)
  crp/layer_relevance          [N, C_l] ChannelConcept.attribute(abs_norm=True) of the relevance at `crp_layer` for
                               condition {y: target} (EpsilonPlusFlat)
  crp/heatmaps                 [K, H, W] CondAttribution heatmaps of image 0 for conditions
                               {crp_layer: concept_k, y: target_0}, with concepts listed in crp/concepts
  crp/concepts                 [K, 2] channel pairs (a single-channel concept repeats its channel)
  crp/graph_edges              [E, 5] zennit-crp AttributionGraph of image 0 for crp/graph_root = (layer index,
                               channel, target): the class with the most relevance at the layer and its most relevant
                               channel there, widths (3, 2), EpsilonPlusFlat, over the conv/linear layers
                               listed in the metadata `graph_layers`; rows (parent layer index, parent channel, child
                               layer index, child channel, relevance) in zennit-crp's order (VGG-type models only:
                               zennit-crp's graph lets relevance bypass conditioned layers, see graph.rs)
  zennit_quirk/epsilon-plus-flat   the same relevance with zennit's canonizer left as it is (see below)

One deliberate change to zennit: its MergeBatchNorm leaves every BatchNorm in the graph with identity statistics,
which still divides by sqrt(1 + eps); our canonizer removes the BatchNorm so the folded model computes exactly the
original function. `ExactMergeBatchNorm` below sets the neutralised BatchNorm's eps to 0 while the canonizer is
registered (the merge itself uses the true eps). The `zennit_quirk` key records the unmodified result; the printed
deviation shows the size of that effect.

Run: python3 tools/fixtures_lrp.py   (a few seconds; torch single-threaded for reproducibility)
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision
from safetensors.numpy import save_file
from torchvision.models.resnet import BasicBlock
from zennit.canonizers import CompositeCanonizer, SequentialMergeBatchNorm
from zennit.composites import EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlus, EpsilonPlusFlat
from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer
from crp.attribution import CondAttribution
from crp.concepts import ChannelConcept
from crp.attribution import AttributionGraph
from crp.graph import trace_model_graph

sys.path.insert(0, os.path.dirname(__file__))
from reference_weights import load_reference_weights  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "lrp")
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
LOW = (0.0 - MEAN) / STD
HIGH = (1.0 - MEAN) / STD


class ExactMergeBatchNorm(SequentialMergeBatchNorm):
    """zennit's SequentialMergeBatchNorm whose neutralised BatchNorm is an exact identity (eps = 0)."""

    def merge_batch_norm(self, modules, batch_norm):
        super().merge_batch_norm(modules, batch_norm)
        self.saved_eps = batch_norm.eps
        batch_norm.eps = 0.0

    def remove(self):
        super().remove()
        self.batch_norm.eps = self.saved_eps


def resnet_canonizer(exact=True):
    merge = ExactMergeBatchNorm() if exact else SequentialMergeBatchNorm()
    return [CompositeCanonizer((merge, ResNetBottleneckCanonizer(), ResNetBasicBlockCanonizer()))]


def vgg_canonizer(exact=True):
    return [ExactMergeBatchNorm() if exact else SequentialMergeBatchNorm()]


class TinyVGG(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(),
        )
        self.avgpool = torch.nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(32, 5),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TinyResNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.relu = torch.nn.ReLU()
        self.layer1 = torch.nn.Sequential(BasicBlock(8, 8))
        down = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1, stride=2, bias=False), torch.nn.BatchNorm2d(16))
        self.layer2 = torch.nn.Sequential(BasicBlock(8, 16, stride=2, downsample=down))
        self.avgpool = torch.nn.AdaptiveAvgPool2d((1, 1))
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def composites(canonizers, dtype=torch.float32):
    low = torch.from_numpy(LOW).reshape(1, 3, 1, 1).to(dtype)
    high = torch.from_numpy(HIGH).reshape(1, 3, 1, 1).to(dtype)
    return {
        "epsilon-plus": EpsilonPlus(canonizers=canonizers()),
        "epsilon-plus-flat": EpsilonPlusFlat(canonizers=canonizers()),
        "epsilon-gamma-box": EpsilonGammaBox(low=low, high=high, canonizers=canonizers()),
        "epsilon-alpha2-beta1": EpsilonAlpha2Beta1(canonizers=canonizers()),
    }


def lrp(model, composite, x, targets):
    """Input relevance with starting relevance one-hot × logit."""
    x = x.clone().requires_grad_(True)
    with composite.context(model) as modified:
        out = modified(x)
        seed = torch.zeros_like(out)
        seed[torch.arange(len(targets)), targets] = out[torch.arange(len(targets)), targets]
        (rel,) = torch.autograd.grad(out, x, grad_outputs=seed.detach())
    return rel.detach()


def crp(model, canonizers, x, targets, layer, concepts):
    attribution = CondAttribution(model, no_param_grad=True)
    cc = ChannelConcept()
    # Channel relevance for the prediction of each image.
    xg = x.clone().requires_grad_(True)
    conditions = [{"y": [t]} for t in targets.tolist()]
    res = attribution(xg, conditions, EpsilonPlusFlat(canonizers=canonizers()), record_layer=[layer])
    layer_rel = cc.attribute(res.relevances[layer], abs_norm=True)
    # Conditional heatmaps of image 0 for several concepts at once (exclude_parallel=True, the default).
    x0 = x[:1].clone().requires_grad_(True)
    conds = [{layer: list(c), "y": [int(targets[0])]} for c in concepts]
    res = attribution(x0, conds, EpsilonPlusFlat(canonizers=canonizers()))
    return layer_rel.detach().numpy(), res.heatmap.detach().numpy()


def attribution_graph(model, canonizers, x, root_layer):
    """The graph of the most relevant channel of `root_layer` for the class with the most relevance at that layer (a
    concept with positive relevance, so that the ranking of its children has no ties at zero)."""
    layers = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    graph = trace_model_graph(model, x[:1], layers)
    attribution = CondAttribution(model, no_param_grad=True)
    classes = model(x[:1]).shape[1]
    totals = []
    for t in range(classes):
        res = attribution(x[:1].clone().requires_grad_(True), [{"y": [t]}],
                          EpsilonPlusFlat(canonizers=canonizers()), record_layer=[root_layer])
        totals.append((res.relevances[root_layer].sum().item(), t, res.relevances[root_layer]))
    _, target, rel = max(totals, key=lambda e: e[0])
    root_channel = int(ChannelConcept().attribute(rel, abs_norm=True)[0].argmax())
    layer_map = {n: ChannelConcept() for n in layers}
    ag = AttributionGraph(attribution, graph, layer_map)
    sample = x[:1].clone().requires_grad_(True)
    _, connections = ag(sample, EpsilonPlusFlat(canonizers=canonizers()), root_channel, root_layer, target=target,
                        width=[3, 2], abs_norm=True, batch_size=8, verbose=False)
    rows = []
    for (pl, pc), children in connections.items():
        for cl, cc, rel in children:
            rows.append([layers.index(pl), pc, layers.index(cl), cc, rel])
    return layers, np.array(rows, dtype=np.float32), np.array([layers.index(root_layer), root_channel, target],
                                                                dtype=np.float32)


def make(name, make_model, x, canonizers, crp_layer, concepts, graph_root=None):
    torch.manual_seed(0)
    model = make_model()
    load_reference_weights(model)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    targets = logits.argmax(1)
    out = {
        "input": x.numpy(),
        "logits": logits.numpy(),
        "targets": targets.float().numpy(),
        "zbox_low": LOW,
        "zbox_high": HIGH,
    }
    for cname, comp in composites(canonizers).items():
        out[f"lrp/{cname}"] = lrp(model, comp, x, targets).numpy()
    model64 = load_reference_weights(make_model()).double().eval()
    for cname, comp in composites(canonizers, torch.float64).items():
        out[f"lrp64/{cname}"] = lrp(model64, comp, x.double(), targets).numpy()
    quirk = lrp(model, EpsilonPlusFlat(canonizers=canonizers(exact=False)), x, targets).numpy()
    out["zennit_quirk/epsilon-plus-flat"] = quirk
    ref = out["lrp/epsilon-plus-flat"]
    dev = np.abs(quirk - ref).max() / np.abs(ref).max()
    for cname in composites(canonizers):
        a, b = out[f"lrp/{cname}"], out[f"lrp64/{cname}"]
        print(f"  {name} {cname}: zennit float32 vs float64 max rel {np.abs(a - b).max() / np.abs(b).max():.2e}")
    layer_rel, heatmaps = crp(model, canonizers, x, targets, crp_layer, concepts)
    out["crp/layer_relevance"] = layer_rel
    out["crp/heatmaps"] = heatmaps
    out["crp/concepts"] = np.array([list(c) + list(c)[:2 - len(c)] for c in concepts], dtype=np.float32)
    metadata = {}
    if graph_root is not None:
        layers, edges, root = attribution_graph(model, canonizers, x, graph_root)
        out["crp/graph_edges"] = edges
        out["crp/graph_root"] = root
        metadata["graph_layers"] = ",".join(layers)
    out = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
    path = os.path.join(OUT, f"{name}.safetensors")
    save_file(out, path, metadata={**metadata, "crp_layer": crp_layer, "generator": "tools/fixtures_lrp.py",
                                   "zennit": "0.4.6", "zennit-crp": "0.6.0", "torch": torch.__version__})
    print(f"{name}: targets {targets.tolist()}, logits {logits[:, :3].tolist()}, "
          f"zennit's BN-identity quirk changes epsilon-plus-flat by {dev:.2e} (max rel), "
          f"{os.path.getsize(path) // 1024} KiB")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    small = torch.randn(2, 3, 16, 16, generator=g)
    big = torch.randn(1, 3, 32, 32, generator=g)
    make("tiny_vgg", TinyVGG, small, vgg_canonizer, "features.4", [(3,), (11,), (0, 7)],
         graph_root="features.8")
    make("tiny_resnet", TinyResNet, small, resnet_canonizer, "layer2.0.conv1", [(2,), (9,), (4, 5)])
    make("vgg11", lambda: torchvision.models.vgg11(num_classes=10), big, vgg_canonizer, "features.8",
         [(5,), (100,), (17, 200)], graph_root="features.11")
    make("resnet18", lambda: torchvision.models.resnet18(num_classes=10), big, resnet_canonizer, "layer3.0.conv2",
         [(1,), (42,), (7, 99)])


if __name__ == "__main__":
    main()
