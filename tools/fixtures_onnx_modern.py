#!/usr/bin/env python3
"""Fixtures for tests/graph/import_onnx_modern.rs: small torch models with the operators of
ConvNeXt, ShuffleNet, MnasNet and TensorFlow-style padded models, exported by torch.onnx
(TorchScript exporter) at opsets 13 and 17, with torch's logits and input gradients.

Writes into tests/fixtures/import/modern/ (each file a few KB):
  convnext.{13,17}.onnx    torchvision's own ConvNeXt pieces at width 8: stem Conv 4×4/4 +
                           LayerNorm2d, two CNBlocks (depthwise 7×7, channel-last LayerNorm,
                           Linear, exact GELU, Linear, layer scale drawn in [0.2, 0.5]), the
                           downsampling LayerNorm2d + Conv 2×2/2, head GAP + LayerNorm2d +
                           Linear(→5); opset 13 writes LayerNorm decomposed
                           (ReduceMean → Sub → Pow → ReduceMean → Add → Sqrt → Div), 17 as
                           LayerNormalization; GELU is Div/Erf/Add/Mul/Mul at both
  convnext.dynamo.onnx     the same by the dynamo exporter (opset 18: LayerNormalization, Gelu, the
                           head's flatten as Reshape to [-1] + Gather of 0..C−1, i.e. as_strided)
  convnext_nobias.17.onnx  the same with every bias and LayerNorm β zero (LRP conservation)
  shufflenet.{13,17}.onnx  torchvision's ShuffleNetV2 InvertedResidual units (stride 2 and 1:
                           channel split by Slice, concat, channel shuffle by
                           Reshape/Transpose/Reshape), then x.mean([2, 3]) (ReduceMean) + Linear
  activations.{13,17}.onnx LeakyReLU(0.1), ELU(0.7), SELU and PReLU (6 slopes in [−0.5, 0.5])
                           after convolutions, a mean over the channels added back
                           (x + x.mean(1, keepdim=True)), then x.mean([2, 3]) + Linear
  pads.{13,17}.onnx        F.pad before convolutions: an asymmetric zero pad (TensorFlow
                           "same", 0 top/left, 1 bottom/right), reflect, replicate (ONNX edge)
                           and a constant 0.5 pad, then GAP + Linear
  reductions.{13,17}.onnx  after convolutions, a sum over the channels added back
                           (x + x.sum(1, keepdim=True): ReduceSum over axis 1), then the spatial
                           maximum and the spatial sum side by side (ReduceMax, ReduceSum over
                           axes 2, 3; Keras' GlobalMaxPooling2D exports as ReduceMax) + Linear
  resize.{13,17}.onnx      after convolutions, every Resize form torch exports: nearest ×2
                           (asymmetric, floor), bilinear ×½ and ×2 (half_pixel), bilinear to
                           9×7 with align_corners=True, nearest down to 5×4 (sizes)
  upsample.9.onnx          opset 9: nearest ×2 as Upsample
  unary.{13,17}.onnx       Neg, Abs, Sqrt, Pow (2 and 1.5), Reciprocal, Exp, c / x on activations,
                           a sigmoid gate
  binary.{13,17}.onnx      Sub, Mul, Div, Add between two activations, same shape and broadcast
                           over channels or space; bias-free (LRP conservation)
  expand.{13,17}.onnx      Expand over channels and over space; Equal and Where on a constant
  transpose.{13,17}.onnx   Transpose (0, 1, 3, 2), to channel-last and back as (0, 3, 2, 1)
  where_tensor.onnx        Where on the input (must be refused: only constants are folded)
  transpose_batch.onnx     Transpose moving the batch axis (must be refused naming the perm)
  <name>.input.npy         the input [1, 3, H, W]
  <name>.logits.npy        torch's logits
  <name>.grad.npy          torch autograd's input gradient of logit TARGET
  erf_alone.onnx           Erf outside GELU's pattern (must be refused by name)
  pad_wrap.onnx            Pad mode 'wrap' (opset 19; must be refused naming the attribute)

Usage: python3 tools/fixtures_onnx_modern.py   (seconds; needs torch, torchvision, onnx, onnxscript)
"""
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from torch import nn
from torchvision.models.convnext import CNBlock, LayerNorm2d
from torchvision.models.shufflenetv2 import InvertedResidual

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "import", "modern")
TARGET = 3


def tiny_convnext(bias=True):
    torch.manual_seed(0)
    d = 8
    ln = lambda c: LayerNorm2d(c, eps=1e-6)  # noqa: E731
    model = nn.Sequential(
        nn.Conv2d(3, d, 4, stride=4), ln(d),
        CNBlock(d, layer_scale=1e-6, stochastic_depth_prob=0.0),
        CNBlock(d, layer_scale=1e-6, stochastic_depth_prob=0.0),
        ln(d), nn.Conv2d(d, 2 * d, 2, stride=2),
        CNBlock(2 * d, layer_scale=1e-6, stochastic_depth_prob=0.0),
        nn.AdaptiveAvgPool2d(1), ln(2 * d), nn.Flatten(1), nn.Linear(2 * d, 5),
    ).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, CNBlock):
                m.layer_scale.copy_(0.2 + 0.3 * torch.rand(m.layer_scale.shape, generator=g))
            if isinstance(m, (nn.LayerNorm, LayerNorm2d)):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        if not bias:
            for name, p in model.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
    return model


class TinyShuffle(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.units = nn.Sequential(InvertedResidual(8, 16, 2), InvertedResidual(16, 16, 1))
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.units(self.stem(x)).mean([2, 3]))


def tiny_shufflenet():
    torch.manual_seed(2)
    model = TinyShuffle().eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
    return model


class Pads(nn.Module):
    def __init__(self):
        super().__init__()
        self.same = nn.Conv2d(3, 6, 3, stride=2)
        self.reflect = nn.Conv2d(6, 6, 3)
        self.edge = nn.Conv2d(6, 6, 3, groups=6)
        self.const = nn.Conv2d(6, 8, 1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.same(F.pad(x, (0, 1, 0, 1))))
        x = torch.relu(self.reflect(F.pad(x, (1, 1, 2, 1), mode="reflect")))
        x = self.edge(F.pad(x, (2, 1, 1, 1), mode="replicate"))
        x = self.const(F.pad(x, (1, 0, 0, 1), value=0.5))
        return self.fc(x.mean([2, 3]))


class Activations(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1)
        self.c3, self.c4 = nn.Conv2d(6, 6, 1), nn.Conv2d(6, 6, 1)
        self.act = nn.Sequential(nn.LeakyReLU(0.1), nn.ELU(0.7), nn.SELU(), nn.PReLU(6, 0.2))
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        x = self.act[0](self.c1(x))
        # A mean over the channels (ReduceMean over axis 1) added back as a spatial map.
        x = x + x.mean(1, keepdim=True)
        x = self.act[1](self.c2(x))
        x = self.act[2](self.c3(x))
        x = self.act[3](self.c4(x))
        return self.fc(x.mean([2, 3]))


class Reductions(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 4, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = x + 0.1 * x.sum(1, keepdim=True)
        x = F.relu(self.c2(x))
        pooled = torch.cat([x.amax((2, 3)), x.sum((2, 3)) / 50.0], 1)
        return self.fc(pooled)


class Resizes(nn.Module):
    """Every Resize form torch exports: nearest ×2 (asymmetric, floor), bilinear ×2 and ×0.5
    (align_corners=False), bilinear to a size with align_corners=True, nearest down to a size."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 6, 3, 2, 1), nn.Conv2d(6, 6, 3, padding=1)
        self.c3, self.c4 = nn.Conv2d(6, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1)
        self.c5 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        x = F.relu(self.c1(x))                                                  # 6×6
        x = F.relu(self.c2(F.interpolate(x, scale_factor=2.0, mode="nearest")))  # 12×12
        x = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        x = F.relu(self.c3(F.interpolate(x, scale_factor=2.0, mode="bilinear",
                                         align_corners=False)))               # 12×12
        x = F.relu(self.c4(F.interpolate(x, size=(9, 7), mode="bilinear", align_corners=True)))
        x = F.relu(self.c5(F.interpolate(x, size=(5, 4), mode="nearest")))
        return self.fc(x.mean([2, 3]))


class Upsample9(nn.Module):
    """What opset 9 can export: nearest and (align_corners=False → asymmetric) bilinear ×2."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(10)
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)
        self.eval()

    def forward(self, x):
        x = F.relu(self.c1(F.interpolate(x, scale_factor=2.0, mode="nearest")))
        x = F.relu(self.c2(x))
        return self.fc(x.mean([2, 3]))


class UnaryOps(nn.Module):
    """Neg, Abs, Sqrt, Pow (integer and fractional exponents), Reciprocal, Exp and c / x on
    activations, and a sigmoid gate (a product the uniform rule leaves to the gradient)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.c1, self.c2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1)
        self.c3, self.gate = nn.Conv2d(6, 6, 1), nn.Conv2d(6, 6, 1)
        self.fc = nn.Linear(6, 5)
        self.eval()

    def forward(self, x):
        x = self.c1(x)
        x = torch.sqrt(x.abs() + 0.5) - torch.exp(-x.abs())
        x = self.c2(x)
        x = 0.1 * x.pow(2) + torch.reciprocal(1.0 + x.pow(2)) + (x.abs() + 0.5).pow(1.5)
        x = x + 2.0 / (1.0 + x.abs())
        x = -self.c3(x)
        x = x * torch.sigmoid(self.gate(x))
        return self.fc(x.mean([2, 3]))


class BinaryOps(nn.Module):
    """Sub, Mul, Div and Add between two activations, equal shapes and broadcasting over the
    channels or the spatial axes; no biases, so that LRP conserves relevance."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(12)
        conv = lambda i, o, k: nn.Conv2d(i, o, k, padding=k // 2, bias=False)  # noqa: E731
        self.c1, self.c2, self.c3 = conv(3, 6, 3), conv(6, 6, 3), conv(6, 6, 1)
        self.fc = nn.Linear(6, 5, bias=False)
        self.eval()

    def forward(self, x):
        a = F.relu(self.c1(x))
        b, c = self.c2(a), self.c3(a)
        s = a - b                                   # Sub
        m = a * c                                   # Mul of two activations
        d = s / (1.5 + c.abs())                     # Div by an activation
        p = d + a.mean([2, 3], keepdim=True)        # Add, broadcast over space
        q = m - c.mean(1, keepdim=True)             # Sub, broadcast over channels
        r = p / (2.0 + a.mean(1, keepdim=True).abs())  # Div, broadcast over channels
        t = q * torch.tanh(b.mean([2, 3], keepdim=True))  # Mul, broadcast over space
        return self.fc(F.relu(p + t + r).mean([2, 3]))


class ExpandWhere(nn.Module):
    """Expand of activations over the channels and over space; Equal and Where on a constant
    mask (folded at import)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(13)
        self.c1, self.c2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6, 5)
        self.register_buffer("mask", (torch.arange(6) % 2).reshape(1, 6, 1, 1))
        self.eval()

    def forward(self, x):
        a = F.relu(self.c1(x))
        e = a.mean(1, keepdim=True).expand(-1, 6, -1, -1)
        g = a.amax((2, 3), keepdim=True).expand_as(a)
        weight = torch.where(self.mask == 1, 1.0, 0.5)
        y = F.relu(self.c2(a + e * weight + g))
        return self.fc(y.mean([2, 3]))


class Transposes(nn.Module):
    """Transposes of activations that keep the batch first: height and width swapped,
    channels last and back in another order, a per-channel constant applied channel-last."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(14)
        self.c1, self.c2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1)
        self.c3 = nn.Conv2d(6, 6, 1)
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 6))
        self.fc = nn.Linear(6, 5)
        self.eval()

    def forward(self, x):
        a = F.relu(self.c1(x))                      # [1, 6, H, W]
        t = F.relu(self.c2(a.transpose(2, 3)))      # [1, 6, W, H]
        u = t.permute(0, 2, 3, 1) * self.scale      # [1, W, H, 6]
        v = u.permute(0, 3, 2, 1)                   # [1, 6, H, W]
        return self.fc((self.c3(v) + a).mean([2, 3]))


def tiny_resizes():
    torch.manual_seed(9)
    return Resizes().eval()


def tiny_reductions():
    torch.manual_seed(8)
    return Reductions().eval()


def tiny_activations():
    torch.manual_seed(6)
    model = Activations().eval()
    with torch.no_grad():
        model.act[3].weight.copy_(torch.linspace(-0.5, 0.5, 6))
    return model


def tiny_pads():
    torch.manual_seed(4)
    return Pads().eval()


def write(name, model, size, opset):
    """Exports at `opset` (13, 17) with the TorchScript exporter, or with the dynamo exporter
    when `opset` is "dynamo"."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 3, size, size, generator=g, requires_grad=True)
    logits = model(x)
    logits[0, TARGET].backward()
    base = os.path.join(OUT, f"{name}.{opset}")
    if opset == "dynamo":
        torch.onnx.export(model, (x.detach(),), base + ".onnx", dynamo=True, external_data=False)
    else:
        torch.onnx.export(model, (x.detach(),), base + ".onnx", dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["logits"])
    np.save(base + ".input.npy", x.detach().numpy().astype(np.float32))
    np.save(base + ".logits.npy", logits.detach().numpy().astype(np.float32))
    np.save(base + ".grad.npy", x.grad.numpy().astype(np.float32))


def hand_built(name, nodes, inits, opset):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, os.path.join(OUT, name + ".onnx"))


def main():
    os.makedirs(OUT, exist_ok=True)
    for opset in (13, 17):
        write("convnext", tiny_convnext(), 32, opset)
        write("shufflenet", tiny_shufflenet(), 32, opset)
        write("pads", tiny_pads(), 17, opset)
        write("activations", tiny_activations(), 12, opset)
        write("reductions", tiny_reductions(), 10, opset)
        write("resize", tiny_resizes(), 12, opset)
        write("unary", UnaryOps(), 8, opset)
        write("binary", BinaryOps(), 8, opset)
        write("expand", ExpandWhere(), 8, opset)
        write("transpose", Transposes(), 7, opset)
    # Opset 9 has no Resize: torch writes Upsample (nearest and linear, asymmetric).
    write("upsample", Upsample9(), 8, 9)
    write("convnext_nobias", tiny_convnext(bias=False), 32, 17)
    write("convnext", tiny_convnext(), 32, "dynamo")
    hand_built("erf_alone", [helper.make_node("Erf", ["input"], ["out"], name="lonely_erf")], [], 17)
    cond = helper.make_tensor("cond", TensorProto.BOOL, [1, 3, 1, 1], [1, 0, 1])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    hand_built("where_tensor", [helper.make_node("Where", ["cond", "input", "zero"], ["out"],
                                                 name="mask_where")], [cond, zero], 17)
    hand_built("transpose_batch", [helper.make_node("Transpose", ["input"], ["out"],
                                                    name="batch_swap", perm=[1, 0, 2, 3])], [], 17)
    pads = helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1])
    hand_built("pad_wrap", [helper.make_node("Pad", ["input", "pads"], ["out"], name="wrap_pad",
                                             mode="wrap")], [pads], 19)


if __name__ == "__main__":
    main()
