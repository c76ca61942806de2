"""Every method through Python equals `relevance explain`'s .npy file for the same model and
input, bit for bit (both run the library's `explain_batch` on the same rows)."""

import numpy as np
import pytest

import relevance
from conftest import FIXTURES, brain_mri, cli_maps, skip

TINY_RESNET = FIXTURES / "import" / "tiny_resnet.onnx"

# (spec, options as Python keywords) — small settings so the whole list runs in seconds.
METHODS = [
    ("saliency", {}),
    ("input-x-gradient", {}),
    ("smoothgrad", {"samples": 4, "noise": 0.1, "seed": 3}),
    ("integrated-gradients", {"steps": 8, "baseline": "black"}),
    ("integrated-gradients", {"steps": 6, "integration": "riemann-trapezoid"}),
    ("occlusion", {"window": 4, "stride": 4}),
    ("guided-backprop", {}),
    ("deconvnet", {}),
    ("cam", {}),
    ("grad-cam", {}),
    ("grad-cam-plus-plus", {}),
    ("hires-cam", {}),
    ("xgrad-cam", {}),
    ("layer-cam", {}),
    ("score-cam", {"batch": 4}),
    ("eigen-cam", {}),
    ("guided-grad-cam", {}),
    ("lrp:epsilon-plus", {}),
    ("lrp:epsilon-plus-flat", {"resnet_skip": "split"}),
    ("lrp:epsilon-gamma-box", {"relevance_start": "probability"}),
    ("lrp:epsilon-alpha2-beta1", {"resnet_skip": "symmetric"}),
    ("lrp:epsilon-plus-flat(skip=split,epsilon=1e-6)", {}),
]


def flags(options):
    return [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny ResNet fixture and its two inputs, also as one .npy file per row for the CLI."""
    x = np.load(FIXTURES / "import" / "tiny_resnet.input.npy").astype(np.float32)
    folder = tmp_path_factory.mktemp("inputs")
    files = []
    for i, row in enumerate(x):
        path = folder / f"row{i}.npy"
        np.save(path, row)
        files.append(path)
    return relevance.load(TINY_RESNET), x, files


def test_every_method_in_the_registry_is_checked():
    listed = {spec.split("(")[0] for spec, _ in METHODS}
    import subprocess
    from conftest import cli_binary
    help_text = subprocess.run([str(cli_binary()), "explain", "--help"], capture_output=True,
                               text=True).stdout
    for name in listed:
        assert name in help_text, name
    assert len(listed) == 20  # 16 gradient/CAM/guided methods and 4 LRP composites


@pytest.mark.parametrize("spec,options", METHODS, ids=[m + str(o) for m, o in METHODS])
def test_method_equals_cli_npy(tiny, tmp_path, spec, options):
    model, x, files = tiny
    expected, _ = cli_maps(tmp_path, files, TINY_RESNET, spec, *flags(options))
    got = model.explain(x, spec, target="pred", **options)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    assert np.array_equal(got, expected), float(np.abs(got - expected).max())


@pytest.mark.parametrize("target", [1, "all"])
def test_targets_equal_cli(tiny, tmp_path, target):
    model, x, files = tiny
    expected, record = cli_maps(tmp_path, files, TINY_RESNET, "lrp:epsilon-plus",
                                "--target", target)
    got = model.explain(x, "lrp:epsilon-plus", target=target)
    if target == "all":
        k = len(model.classes)
        assert got.shape == (2, k, 3, 12, 12)
        got = got.reshape(2 * k, 3, 12, 12)  # the CLI writes input × class rows in this order
    assert [o["target"]["index"] for o in record["outputs"]] == (
        [1, 1] if target == 1 else list(range(len(model.classes))) * 2)
    assert np.array_equal(got, expected)


def test_predict_is_softmax_of_logits_and_argmax_is_the_explained_class(tiny, tmp_path):
    model, x, files = tiny
    logits = model.logits(x)
    probs = model.predict(x)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    _, record = cli_maps(tmp_path, files, TINY_RESNET, "saliency")
    assert [o["target"]["index"] for o in record["outputs"]] == list(logits.argmax(axis=1))
    np.testing.assert_allclose([o["target"]["prob"] for o in record["outputs"]],
                               probs.max(axis=1), rtol=1e-6)


def test_image_paths_and_pil_images_are_preprocessed_by_the_card(tmp_path):
    data = brain_mri()
    images = sorted((data / "images").glob("*.jpg"))[:3]
    model = relevance.load(data / "vgg16.onnx")
    expected, _ = cli_maps(tmp_path, images, data / "vgg16.onnx", "grad-cam")
    assert np.array_equal(model.explain([str(p) for p in images], "grad-cam"), expected)
    assert np.array_equal(model.explain(images, "grad-cam"), expected)  # pathlib paths
    try:
        from PIL import Image
    except ImportError:
        skip("Pillow is not installed (pip install pillow): PIL images not checked")
    # PIL's JPEG decoder (libjpeg) and the engine's differ in the last bit of some pixels, so
    # PIL images are compared on lossless copies: the same pixels as the files the CLI reads.
    pngs = []
    for p in images:
        png = tmp_path / (p.stem + ".png")
        Image.open(p).save(png)
        pngs.append(png)
    expected_png, _ = cli_maps(tmp_path / "png", pngs, data / "vgg16.onnx", "grad-cam")
    pil = [Image.open(p) for p in pngs]
    assert np.array_equal(model.explain(pil, "grad-cam"), expected_png)
