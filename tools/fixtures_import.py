#!/usr/bin/env python3
"""Fixtures for the model-import tests (tests/import_*.rs, tests/cli/predict_cli.rs).

Writes into tests/fixtures/import/ (every file well under 200 KB):

PyTorch checkpoints (read back by relevance's own pickle reader, compared to safetensors twins):
  tensors_zip.pth / tensors_legacy.pth   the same dict of tensors saved by torch.save with
                                         _use_new_zipfile_serialization True / False: float32,
                                         a transposed (non-contiguous) view, a view with a storage
                                         offset and strides, two views of one storage, float16,
                                         bfloat16, float64, a 0-d tensor and an int64 tensor
  tensors.safetensors                    the float tensors of that dict, contiguous float32
  small_cnn_nested.pth                   relevance's small_cnn (1 channel, 3 classes) as a training
                                         checkpoint {"epoch", "state_dict": {"module."+key: fp16},
                                         "optimizer", "best_acc"}, one weight a stride-0 view; small_cnn.{input,logits}.npy are
                                         torch's logits for a fixed input with those weights
  mismatch.pth                           one small_cnn key with the wrong shape
  evil_zip.pth / evil_legacy.pth         pickles whose "tensor" is os.system("touch <marker>")

ONNX models (tests compare relevance's forward pass to onnxruntime's output on <name>.input.npy,
stored NCHW as relevance feeds it):
  tiny_cnn.onnx      torch export: conv with asymmetric pads (patched in), maxpool ceil_mode,
                     BatchNormalization, avgpool count_include_pad=False, flatten, Gemm
  tiny_resnet.onnx   torch export: residual block with a downsampling shortcut, Add, GAP, Gemm
  tiny_se.onnx       torch export: squeeze-excitation (GAP, 1×1 convs, Sigmoid, Mul), SiLU as
                     Mul(x, Sigmoid(x)), HardSwish, ReLU6 (Clip), Softmax
  keras_nhwc.onnx    hand-built like tf2onnx's Keras exports: NHWC input with Sub/Div
                     normalisation, Transpose to NCHW, SAME_UPPER conv, transpose back to NHWC,
                     Shape/Gather/Cast/Slice/Concat/Reshape flatten, MatMul+Add, Keras BN as
                     Mul+Add, Softmax
  ops_mix.onnx       hand-built: Gemm transB=0 with alpha/beta, a dilated depthwise conv, a SAME_LOWER
                     conv, Clip with inputs, HardSigmoid, Div, constant − tensor, Concat,
                     AveragePool ceil_mode with count_include_pad=1, Reshape to 4-D,
                     Squeeze/Unsqueeze, Tanh, GlobalMaxPool
  unsupported.onnx   uses Einsum (×2) and LSTM, for the error listing every unsupported op

With RELEVANCE_DATA set (tools/fetch-data.sh), also writes brain_mri_ort.json: onnxruntime's
logits and probabilities from brain-mri/vgg16.onnx for a synthetic input given by a formula, and
for two MRIs preprocessed like the package that ships the model (PIL RGB, Image.resize((240, 240))
bicubic, /255, NHWC). Only numbers are stored, no image data.

Usage: python3 tools/fixtures_import.py   (seconds; needs torch, onnx, onnxruntime, safetensors)
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "import")
# The evil pickles would create this file if anything ever executed them.
MARKER = "/tmp/relevance-import-test-pwned"


def path(name):
    return os.path.join(OUT, name)


def save_npy(name, array):
    np.save(path(name), np.ascontiguousarray(array, dtype=np.float32))


# ---------------------------------------------------------------- PyTorch checkpoints


def tensor_dict():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(3, 4, generator=g)
    big = torch.randn(5, 6, generator=g)
    shared = torch.randn(10, generator=g)
    return collections.OrderedDict(
        plain=torch.randn(2, 3, generator=g),
        transposed=base.t(),  # stride (1, 4): not contiguous
        strided=big[1:, ::2],  # storage offset 6, strides (6, 2)
        shared_head=shared[:4],
        shared_tail=shared[6:].view(2, 2),  # same storage, offset 6
        half=torch.randn(5, generator=g).half(),
        bf16=torch.randn(2, 2, generator=g).bfloat16(),
        double=torch.randn(3, generator=g).double(),
        scalar=torch.tensor(3.5),
        count=torch.tensor(17, dtype=torch.long),
    )


def write_tensor_checkpoints():
    d = tensor_dict()
    assert not d["transposed"].is_contiguous() and d["strided"].storage_offset() == 6
    torch.save(d, path("tensors_zip.pth"))
    torch.save(d, path("tensors_legacy.pth"), _use_new_zipfile_serialization=False)
    twin = {k: v.float().contiguous() for k, v in d.items() if v.is_floating_point()}
    save_file(twin, path("tensors.safetensors"))


class SmallCNN(torch.nn.Module):
    """relevance's small_cnn (src/graph/zoo/small_cnn.rs) with the same module names."""

    def __init__(self, in_channels=1, num_classes=3):
        super().__init__()
        layers, c = [], in_channels
        for i, w in enumerate([16, 32, 64, 128]):
            layers += [torch.nn.Conv2d(c, w, 3, padding=1, bias=False), torch.nn.BatchNorm2d(w), torch.nn.ReLU()]
            if i < 3:
                layers.append(torch.nn.MaxPool2d(2, 2))
            c = w
        self.features = torch.nn.Sequential(*layers)
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(c, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def write_small_cnn():
    torch.manual_seed(2)
    model = SmallCNN()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.num_batches_tracked.fill_(100)
    # Stored as float16 (as many shared checkpoints are); the reference logits use the same
    # rounded weights in float32. The largest weight is an expanded view (stride 0 along the input
    # channels), which keeps the file small and exercises broadcast strides.
    state = collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items())
    w = state["features.12.weight"]
    state["features.12.weight"] = w[:, :1].clone().expand_as(w)
    assert state["features.12.weight"].stride()[1] == 0
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    model.eval()
    checkpoint = {
        "epoch": 7,
        "state_dict": collections.OrderedDict(("module." + k, v) for k, v in state.items()),
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1, 2]}]},
        "best_acc": 0.93,
    }
    torch.save(checkpoint, path("small_cnn_nested.pth"))
    x = torch.randn(2, 1, 20, 20, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = model(x)
    save_npy("small_cnn.input.npy", x.numpy())
    save_npy("small_cnn.logits.npy", logits.numpy())
    bad = collections.OrderedDict([("features.0.weight", torch.zeros(16, 1, 5, 5))])
    torch.save(bad, path("mismatch.pth"))


def evil_pickle():
    """{'weight': os.system('touch MARKER')} as protocol-2 opcodes, written by hand so the
    global is literally os.system (pickle.dumps would write posix.system)."""
    cmd = f"touch {MARKER}".encode()
    return (
        b"\x80\x02}q\x00X\x06\x00\x00\x00weight"
        + b"cos\nsystem\n"
        + b"X" + struct.pack("<I", len(cmd)) + cmd
        + b"\x85R"  # TUPLE1, REDUCE: os.system(cmd)
        + b"s."
    )


def write_evil():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, content in [("data.pkl", evil_pickle()), ("byteorder", b"little"), ("version", b"3\n")]:
            z.writestr(zipfile.ZipInfo("evil/" + name, date_time=(2020, 1, 1, 0, 0, 0)), content)
    with open(path("evil_zip.pth"), "wb") as f:
        f.write(buf.getvalue())
    legacy = (
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
        + pickle.dumps(1001, protocol=2)
        + pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {}}, protocol=2)
        + evil_pickle()
    )
    with open(path("evil_legacy.pth"), "wb") as f:
        f.write(legacy)


# ---------------------------------------------------------------- ONNX models


def run_ort(model_path, feed):
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: feed})[0]


def export(model, name, x, opset):
    model.eval()
    torch.onnx.export(
        model, x, path(name + ".onnx"), dynamo=False, opset_version=opset,
        input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
    )


def finish(name, nchw_input, feed=None):
    """Stores the NCHW input and onnxruntime's output for it."""
    onnx.checker.check_model(onnx.load(path(name + ".onnx")))
    out = run_ort(path(name + ".onnx"), nchw_input if feed is None else feed)
    save_npy(name + ".input.npy", nchw_input)
    save_npy(name + ".output.npy", out)


def randomize_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)


def tiny_cnn():
    torch.manual_seed(10)
    m = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
        torch.nn.BatchNorm2d(8),  # after the pool, so the exporter cannot fold it into the conv
        torch.nn.Conv2d(8, 12, 3, stride=2),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
        torch.nn.Flatten(),
        torch.nn.Linear(12 * 2 * 2, 5),
    )
    randomize_bn(m, 11)
    x = torch.randn(2, 3, 15, 13, generator=torch.Generator().manual_seed(12))
    export(m, "tiny_cnn", x, 13)
    # Asymmetric padding on the first conv: ONNX pads [top, left, bottom, right] = [2, 0, 0, 2]
    # (the output keeps its 15×13 size, so the rest of the exported shapes still hold).
    model = onnx.load(path("tiny_cnn.onnx"))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    for a in conv.attribute:
        if a.name == "pads":
            a.ints[:] = [2, 0, 0, 2]
    onnx.save(model, path("tiny_cnn.onnx"))
    finish("tiny_cnn", x.numpy())


class TinyResNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
        self.conv1 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(16)
        self.conv2 = torch.nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(16)
        self.down = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1, stride=2, bias=False), torch.nn.BatchNorm2d(16))
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, x):
        x = self.stem(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        y = torch.relu(y + self.down(x))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(y, 1), 1))


def tiny_resnet():
    torch.manual_seed(20)
    m = TinyResNet()
    randomize_bn(m, 21)
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(22))
    export(m, "tiny_resnet", x, 11)
    finish("tiny_resnet", x.numpy())


class TinySE(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.squeeze = torch.nn.Conv2d(16, 4, 1)
        self.excite = torch.nn.Conv2d(4, 16, 1)
        self.conv2 = torch.nn.Conv2d(16, 8, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x):
        x = self.conv(x)
        x = x * torch.sigmoid(x)  # SiLU as Mul(x, Sigmoid(x))
        s = torch.nn.functional.adaptive_avg_pool2d(x, 1)
        s = torch.sigmoid(self.excite(torch.relu(self.squeeze(s))))
        x = x * s
        x = torch.nn.functional.hardswish(self.conv2(x))
        x = torch.nn.functional.relu6(x * 3.0)
        x = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return torch.softmax(self.fc(x), dim=1)


def tiny_se():
    torch.manual_seed(30)
    m = TinySE()
    x = torch.randn(2, 3, 10, 10, generator=torch.Generator().manual_seed(31))
    export(m, "tiny_se", x, 14)
    finish("tiny_se", x.numpy())


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def keras_nhwc():
    """What tf2onnx emits for a small Keras CNN (Rescaling-like Sub/Div, Conv2D 'same' stride 2,
    MaxPool, Flatten, Dense+BN, Dense softmax), written with onnx.helper."""
    r = np.random.default_rng(40)
    f32 = lambda *s: r.standard_normal(s).astype(np.float32) * 0.3
    H = W = 11
    nodes = [
        helper.make_node("Sub", ["input", "mean"], ["centered"], name="model/normalize/sub"),
        helper.make_node("Div", ["centered", "std"], ["normalized"], name="model/normalize/truediv"),
        helper.make_node("Transpose", ["normalized"], ["nchw"], name="model/conv/BiasAdd__6", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv_w", "conv_b"], ["conv"], name="model/conv/BiasAdd",
                         auto_pad="SAME_UPPER", strides=[2, 2], kernel_shape=[4, 4]),
        helper.make_node("Relu", ["conv"], ["relu"], name="model/conv/Relu"),
        helper.make_node("MaxPool", ["relu"], ["pool"], name="model/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["pool"], ["nhwc"], name="Transpose__20", perm=[0, 2, 3, 1]),
        helper.make_node("Shape", ["pool"], ["shape"], name="Shape__21"),
        helper.make_node("Gather", ["shape", "to_nhwc"], ["shape_nhwc"], name="Gather__22"),
        helper.make_node("Cast", ["shape_nhwc"], ["shape_i32"], name="model/flatten/Shape", to=TensorProto.INT32),
        helper.make_node("Slice", ["shape_i32", "zero", "one", "zero"], ["batch"], name="model/flatten/strided_slice"),
        helper.make_node("Concat", ["batch", "flat_size"], ["target_i32"], name="model/flatten/Reshape/shape", axis=0),
        helper.make_node("Cast", ["target_i32"], ["target"], name="model/flatten/Reshape__23", to=TensorProto.INT64),
        helper.make_node("Reshape", ["nhwc", "target"], ["flat"], name="model/flatten/Reshape"),
        helper.make_node("MatMul", ["flat", "dense1_w"], ["d1"], name="model/dense/MatMul"),
        helper.make_node("Add", ["d1", "dense1_b"], ["d1b"], name="model/dense/BiasAdd"),
        helper.make_node("Relu", ["d1b"], ["d1r"], name="model/dense/Relu"),
        helper.make_node("Mul", ["d1r", "bn_mul"], ["bn1"], name="model/bn/batchnorm/mul_1"),
        helper.make_node("Add", ["bn1", "bn_sub"], ["bn2"], name="model/bn/batchnorm/add_1"),
        helper.make_node("MatMul", ["bn2", "dense2_w"], ["d2"], name="model/out/MatMul"),
        helper.make_node("Add", ["d2", "dense2_b"], ["logits"], name="model/out/BiasAdd"),
        helper.make_node("Softmax", ["logits"], ["probs"], name="model/out/Softmax", axis=1),
    ]
    # SAME_UPPER, stride 2: 11 → 6; pool 2 → 3; flat = 3·3·6.
    flat = 3 * 3 * 6
    inits = [
        init("mean", np.array([0.4, 0.5, 0.6], np.float32)),
        init("std", np.array([0.2, 0.25, 0.3], np.float32)),
        init("conv_w", f32(6, 3, 4, 4)),
        init("conv_b", f32(6)),
        init("to_nhwc", np.array([0, 2, 3, 1], np.int64)),
        init("zero", np.array([0], np.int32)),
        init("one", np.array([1], np.int32)),
        init("flat_size", np.array([flat], np.int32)),
        init("dense1_w", f32(flat, 10)),
        init("dense1_b", f32(10)),
        init("bn_mul", (1 + f32(10)).astype(np.float32)),
        init("bn_sub", f32(10)),
        init("dense2_w", f32(10, 4)),
        init("dense2_b", f32(4)),
    ]
    graph = helper.make_graph(
        nodes, "keras_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["unk__1", H, W, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["unk__2", 4])],
        inits,
    )
    model = helper.make_model(graph, producer_name="tf2onnx", opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path("keras_nhwc.onnx"))
    x_nhwc = np.random.default_rng(41).random((2, H, W, 3), dtype=np.float32)
    finish("keras_nhwc", x_nhwc.transpose(0, 3, 1, 2), feed=x_nhwc)


def ops_mix():
    r = np.random.default_rng(50)
    f32 = lambda *s: r.standard_normal(s).astype(np.float32) * 0.4
    nodes = [
        # depthwise 3×3 with dilation 2, then a 2×2 SAME_LOWER conv (its one pixel of padding
        # goes before: top and left)
        helper.make_node("Conv", ["input", "dw_w"], ["dw"], name="dw", group=3, dilations=[2, 2],
                         pads=[2, 2, 2, 2], kernel_shape=[3, 3]),
        helper.make_node("Conv", ["dw", "same_w", "same_b"], ["same"], name="same_lower",
                         auto_pad="SAME_LOWER", kernel_shape=[2, 2]),
        helper.make_node("Clip", ["same", "clip_min", "clip_max"], ["clipped"], name="clip"),
        helper.make_node("HardSigmoid", ["input"], ["hs"], name="hsig", alpha=0.3, beta=0.4),
        helper.make_node("Div", ["hs", "two"], ["half"], name="div"),
        helper.make_node("Sub", ["one_f", "half"], ["flipped"], name="one_minus"),
        helper.make_node("Concat", ["clipped", "flipped"], ["cat"], name="cat", axis=1),
        helper.make_node("AveragePool", ["cat"], ["avg"], name="avg", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1),
        helper.make_node("Tanh", ["avg"], ["t"], name="tanh"),
        # [N, 8, 5, 5] → [N, 2, 4, 25] → flatten via Reshape [N, 200] ... through a 4-D reshape
        helper.make_node("Reshape", ["t", "shape4"], ["r4"], name="reshape4"),
        helper.make_node("GlobalMaxPool", ["r4"], ["gmp"], name="gmp"),
        helper.make_node("Squeeze", ["gmp", "axes23"], ["sq"], name="squeeze"),
        helper.make_node("Gemm", ["sq", "gemm_w", "gemm_c"], ["g"], name="gemm", alpha=0.5, beta=2.0, transB=0),
        helper.make_node("Unsqueeze", ["g", "axes23"], ["u"], name="unsqueeze"),
        helper.make_node("Flatten", ["u"], ["out"], name="flatten", axis=1),
    ]
    inits = [
        init("dw_w", f32(3, 1, 3, 3)),
        init("same_w", f32(5, 3, 2, 2)),
        init("same_b", f32(5)),
        init("clip_min", np.array(-0.5, np.float32)),
        init("clip_max", np.array(0.7, np.float32)),
        init("two", np.array([2.0], np.float32)),
        init("one_f", np.array(1.0, np.float32)),
        init("shape4", np.array([0, 2, 4, 25], np.int64)),
        init("axes23", np.array([2, 3], np.int64)),
        init("gemm_w", f32(2, 6)),
        init("gemm_c", f32(1, 6)),
    ]
    graph = helper.make_graph(
        nodes, "ops_mix",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 9, 9])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 6])],
        inits,
    )
    model = helper.make_model(graph, producer_name="hand", opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path("ops_mix.onnx"))
    x = np.random.default_rng(51).standard_normal((2, 3, 9, 9)).astype(np.float32)
    finish("ops_mix", x)


def unsupported():
    nodes = [
        helper.make_node("Einsum", ["input", "input"], ["e1"], name="e1", equation="nchw,nchw->nchw"),
        helper.make_node("Relu", ["e1"], ["r"], name="relu"),
        helper.make_node("Einsum", ["r", "r"], ["e2"], name="e2", equation="nchw,nchw->nchw"),
        helper.make_node("LSTM", ["seq", "lstm_w", "lstm_r"], ["y"], name="lstm", hidden_size=2),
    ]
    graph = helper.make_graph(
        nodes, "unsupported",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("e2", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [init("seq", np.zeros((1, 1, 2), np.float32)), init("lstm_w", np.zeros((1, 8, 2), np.float32)),
         init("lstm_r", np.zeros((1, 8, 2), np.float32))],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path("unsupported.onnx"))


# ---------------------------------------------------------------- the real model


def synthetic_nhwc(h, w, c):
    """A deterministic input both sides compute: v_i = 0.5 + 0.5·sin(0.0123·i) over the NHWC
    flat index i (float64, rounded to float32)."""
    i = np.arange(h * w * c, dtype=np.float64)
    return (0.5 + 0.5 * np.sin(0.0123 * i)).astype(np.float32).reshape(1, h, w, c)


def brain_mri():
    data = os.environ.get("RELEVANCE_DATA")
    if not data:
        print("RELEVANCE_DATA not set: skipping brain_mri_ort.json", file=sys.stderr)
        return
    from PIL import Image

    folder = os.path.join(data, "brain-mri")
    model = onnx.load(os.path.join(folder, "vgg16.onnx"))
    # Also expose the logits (the input of the final Softmax) as an output.
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    model.graph.output.append(helper.make_tensor_value_info(softmax.input[0], TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = sess.get_inputs()[0].name

    def run(x):
        probs, logits = sess.run(None, {feed: x})
        return {"probs": probs[0].tolist(), "logits": logits[0].tolist()}

    out = {"synthetic": run(synthetic_nhwc(240, 240, 3))}
    # As the package that ships the model preprocesses: PIL RGB, Image.resize (bicubic), /255.
    for name in ["Te-gl_0010.jpg", "Te-no_0022.jpg"]:
        img = Image.open(os.path.join(folder, "images", name)).convert("RGB").resize((240, 240))
        out[name] = run((np.asarray(img, dtype=np.float32) / 255.0)[None])
    with open(path("brain_mri_ort.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    write_tensor_checkpoints()
    write_small_cnn()
    write_evil()
    tiny_cnn()
    tiny_resnet()
    tiny_se()
    keras_nhwc()
    ops_mix()
    unsupported()
    brain_mri()
    for name in sorted(os.listdir(OUT)):
        size = os.path.getsize(path(name))
        assert size < 200_000, f"{name} is {size} bytes"
        print(f"{size:>8}  {name}")


if __name__ == "__main__":
    main()
