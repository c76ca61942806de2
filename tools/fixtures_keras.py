#!/usr/bin/env python3
"""Fixtures for tests/graph/import_keras.rs: small Keras 3 models built from the layers the
Keras applications use, exported the way Keras 3 documents (`model.export` as a SavedModel,
then tf2onnx's converter), with Keras's logits and input gradient.

Writes tests/fixtures/import/keras/<name>.{onnx,input.npy,logits.npy,grad.npy}:
  mobile.{13,17}   MobileNetV3-style: Rescaling, ZeroPadding2D before a stride-2 depthwise
                   convolution (tf2onnx leaves that Pad on the NHWC value), BatchNormalization,
                   hard-swish, a squeeze-and-excitation block, global pooling, Dense
  resnet_v2.{13,17} ResNet50V2-style: ZeroPadding2D before a 7×7 stride-2 convolution and before
                   max pooling, pre-activation BatchNorm, a residual Add
Input NHWC 1×32×32×3 in Keras (saved NCHW for relevance, whose importer turns tf2onnx's NHWC
input into an NCHW graph input); seeded random weights, BatchNorm statistics away from 0/1.
The gradient is d logit[3] / d input (GradientTape), NCHW.

Usage: python3 tools/fixtures_keras.py   (needs tensorflow-cpu, keras, tf2onnx, onnx)
"""
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "import", "keras")
TARGET = 3
SIZE = 32


def hard_swish(x):
    return layers.Multiply()([x, layers.Activation("hard_sigmoid")(x)])


def mobile():
    x0 = keras.Input((SIZE, SIZE, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1)(x0)
    x = layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = hard_swish(x)
    x = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="valid", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    se = layers.GlobalAveragePooling2D(keepdims=True)(x)
    se = layers.Conv2D(4, 1, activation="relu")(se)
    se = layers.Conv2D(8, 1, activation="hard_sigmoid")(se)
    x = layers.Multiply()([x, se])
    x = layers.Conv2D(16, 1, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = hard_swish(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(x0, layers.Dense(10)(x))


def resnet_v2():
    x0 = keras.Input((SIZE, SIZE, 3))
    x = layers.ZeroPadding2D(3)(x0)
    x = layers.Conv2D(8, 7, strides=2)(x)
    x = layers.ZeroPadding2D(1)(x)
    x = layers.MaxPooling2D(3, strides=2)(x)
    pre = layers.ReLU()(layers.BatchNormalization()(x))
    shortcut = layers.Conv2D(16, 1)(pre)
    y = layers.Conv2D(4, 1, use_bias=False)(pre)
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.ZeroPadding2D(1)(y)
    y = layers.Conv2D(4, 3, use_bias=False)(y)
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.Conv2D(16, 1)(y)
    x = layers.Add()([shortcut, y])
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(x0, layers.Dense(10)(x))


def randomise_batchnorm(model, rng):
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.moving_mean.assign(0.1 * rng.standard_normal(c).astype("float32"))
            layer.moving_variance.assign((0.5 + rng.random(c)).astype("float32"))
            layer.gamma.assign((0.8 + 0.4 * rng.random(c)).astype("float32"))
            layer.beta.assign(0.1 * rng.standard_normal(c).astype("float32"))


def export(model, path, opset):
    with tempfile.TemporaryDirectory() as folder:
        saved = os.path.join(folder, "saved_model")
        model.export(saved, format="tf_saved_model", verbose=False)
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", saved,
                        "--opset", str(opset), "--output", path], check=True,
                       capture_output=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, build in [("mobile", mobile), ("resnet_v2", resnet_v2)]:
        keras.utils.set_random_seed(0)
        model = build()
        randomise_batchnorm(model, np.random.default_rng(1))
        x = (255 * np.random.default_rng(7).random((1, SIZE, SIZE, 3))).astype("float32")
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            logits = model(xt, training=False)
            chosen = logits[0, TARGET]
        grad = tape.gradient(chosen, xt).numpy()
        nchw = lambda a: np.ascontiguousarray(a.transpose(0, 3, 1, 2))  # noqa: E731
        for opset in (13, 17):
            base = os.path.join(OUT, f"{name}.{opset}")
            export(model, base + ".onnx", opset)
            np.save(base + ".input.npy", nchw(x))
            np.save(base + ".logits.npy", logits.numpy().astype("float32"))
            np.save(base + ".grad.npy", nchw(grad).astype("float32"))
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}: fixtures in {OUT}")
    shutil.rmtree(os.path.join(OUT, "__pycache__"), ignore_errors=True)


if __name__ == "__main__":
    main()
