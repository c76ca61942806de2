"""Reference relevances of parameterised LRP composites from zennit 1.0.0, for the method-spec parity test
(tests/methods/method_specs.rs): `lrp:<preset>(<parameters>)` must give what zennit gives for the same composite
constructed with the same parameters, on the same weights and inputs as tools/fixtures_lrp.py.

Writes tests/fixtures/lrp/params_<model>.safetensors for tiny_vgg and tiny_resnet with keys
  input, targets, logits       as in tools/fixtures_lrp.py (same seed, same inputs)
  zbox_low, zbox_high           the default z^B bounds (ImageNet normalisation of 0 and 1), as there
  lrp/<spec>                    input relevance [N, C, H, W], one-hot x logit start, for each spec in SPECS below
  lrp64/<spec>                  the same in float64 (stored as float32), for the parity criterion
  ig/<spec>, ig64/<spec>        zennit's IntegratedGradients with a preset composite (the path integral of the modified
                                gradient, right Riemann sum of n_iter points from a zero baseline, times the input),
                                one-hot attr_output, for `integrated-gradients(rules=…,integration=riemann-right,…)`

`lrp:epsilon-gamma-box(gamma=0.5,gamma-form=classic)` uses `ClassicGamma` below, zennit 0.4.6's Gamma hook verbatim.

Run: /tmp/z1venv/bin/python tools/fixtures_lrp_params.py   (needs torch, torchvision, zennit 1.0.0 — installed with
`pip install --ignore-requires-python zennit==1.0.0`; a few seconds)
"""
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file
from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite, layer_map_base
from zennit.core import BasicHook, stabilize
from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, ZBox, ZPlus
from zennit.types import Convolution, Linear
from zennit.version import __version__ as ZENNIT_VERSION

sys.path.insert(0, os.path.dirname(__file__))
from zennit.attribution import IntegratedGradients  # noqa: E402
from fixtures_lrp import HIGH, LOW, OUT, TinyResNet, TinyVGG, lrp  # noqa: E402
from fixtures_lrp_zennit1 import composites, resnet_canonizer, vgg_canonizer  # noqa: E402

assert ZENNIT_VERSION == "1.0.0", f"needs zennit 1.0.0, found {ZENNIT_VERSION}"

IG_STEPS = 5
IG_SPECS = {f"integrated-gradients(rules={c},integration=riemann-right,steps={IG_STEPS})": c
            for c in ["epsilon-plus", "epsilon-plus-flat"]}
from reference_weights import load_reference_weights  # noqa: E402


class ClassicGamma(BasicHook):
    """zennit 0.4.6's `Gamma` rule (its rules.py, verbatim but for the class name): positive weights and bias boosted
    by gamma, one denominator for every output."""

    def __init__(self, gamma=0.25):
        super().__init__(
            input_modifiers=[lambda input: input],
            param_modifiers=[lambda param, _: param + gamma * param.clamp(min=0)],
            output_modifiers=[lambda output: output],
            gradient_mapper=(lambda out_grad, outputs: out_grad / stabilize(outputs[0])),
            reducer=(lambda inputs, gradients: inputs[0] * gradients[0])
        )


def composite(conv, dense_epsilon, first, canonizers):
    """zennit 1.0.0's composites are built like this (its `layer_map_base()` plus the rules); building them here lets
    the parameters vary."""
    layer_map = layer_map_base() + [(Convolution, conv), (torch.nn.Linear, Epsilon(epsilon=dense_epsilon))]
    if first is None:
        return LayerMapComposite(layer_map, canonizers=canonizers())
    return SpecialFirstLayerMapComposite(layer_map, [first], canonizers=canonizers())


def specs(canonizers, dtype):
    """`spec text` -> the zennit composite with those parameters."""
    low = torch.from_numpy(LOW).reshape(1, 3, 1, 1).to(dtype)
    high = torch.from_numpy(HIGH).reshape(1, 3, 1, 1).to(dtype)
    return {
        # ε is the dense layers' ε in every composite.
        "lrp:epsilon-plus(epsilon=0.25)": composite(ZPlus(), 0.25, None, canonizers),
        "lrp:epsilon-plus-flat(epsilon=0.5)": composite(ZPlus(), 0.5, (Linear, Flat()), canonizers),
        "lrp:epsilon-gamma-box(gamma=0.5,epsilon=0.1)": composite(
            Gamma(gamma=0.5), 0.1, (Convolution, ZBox(low, high)), canonizers),
        # One bound for every channel and pixel.
        "lrp:epsilon-gamma-box(low=-1.5,high=2)": composite(
            Gamma(gamma=0.25), 1e-6, (Convolution, ZBox(torch.full_like(low, -1.5), torch.full_like(high, 2.0))),
            canonizers),
        "lrp:epsilon-gamma-box(gamma=0.5,gamma-form=classic)": composite(
            ClassicGamma(gamma=0.5), 1e-6, (Convolution, ZBox(low, high)), canonizers),
        "lrp:epsilon-alpha2-beta1(alpha=3)": composite(AlphaBeta(alpha=3.0, beta=2.0), 1e-6, None, canonizers),
    }


def integrated(model, composite, x, targets):
    """zennit's IntegratedGradients over `composite`, started from 1 at each row's target."""
    one_hot = torch.zeros_like(model(x)).detach()
    one_hot[torch.arange(len(targets)), targets] = 1.0
    with IntegratedGradients(model, composite=composite, n_iter=IG_STEPS) as attributor:
        _, attribution = attributor(x, one_hot)
    return attribution.detach()


def make(name, make_model, x, canonizers):
    model = load_reference_weights(make_model()).eval()
    with torch.no_grad():
        logits = model(x)
    targets = logits.argmax(1)
    out = {"input": x.numpy(), "logits": logits.numpy(), "targets": targets.float().numpy(),
           "zbox_low": LOW, "zbox_high": HIGH}
    for spec, comp in specs(canonizers, torch.float32).items():
        out[f"lrp/{spec}"] = lrp(model, comp, x, targets).numpy()
    model64 = load_reference_weights(make_model()).double().eval()
    for spec, comp in specs(canonizers, torch.float64).items():
        out[f"lrp64/{spec}"] = lrp(model64, comp, x.double(), targets).numpy()
    for spec, cname in IG_SPECS.items():
        out[f"ig/{spec}"] = integrated(model, composites(canonizers)[cname], x, targets).numpy()
        out[f"ig64/{spec}"] = integrated(model64, composites(canonizers, torch.float64)[cname], x.double(),
                                         targets).numpy()
    out = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
    path = os.path.join(OUT, f"params_{name}.safetensors")
    save_file(out, path, metadata={"generator": "tools/fixtures_lrp_params.py", "zennit": ZENNIT_VERSION,
                                   "torch": torch.__version__})
    print(f"{name}: {len(specs(canonizers, torch.float32))} specs, {os.path.getsize(path) // 1024} KiB")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    g = torch.Generator().manual_seed(1234)
    small = torch.randn(2, 3, 16, 16, generator=g)
    make("tiny_vgg", TinyVGG, small, vgg_canonizer)
    make("tiny_resnet", TinyResNet, small, resnet_canonizer)


if __name__ == "__main__":
    main()
