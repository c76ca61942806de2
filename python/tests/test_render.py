"""`relevance.render.overlay` draws what `relevance explain` draws in its PNGs."""

import numpy as np
import pytest

import relevance
from conftest import FIXTURES, cli_maps, skip

TINY_RESNET = FIXTURES / "import" / "tiny_resnet.onnx"


@pytest.mark.parametrize("method,style", [("lrp:epsilon-plus", "signed"),
                                          ("saliency", "magnitude"), ("grad-cam", "unit")])
def test_overlay_equals_the_cli_png(tmp_path, method, style):
    try:
        from PIL import Image
    except ImportError:
        skip("Pillow is not installed (pip install pillow): the CLI's PNGs cannot be read")
    x = np.load(FIXTURES / "import" / "tiny_resnet.input.npy").astype(np.float32)
    row = tmp_path / "row.npy"
    np.save(row, x[0])
    out = tmp_path / "out"
    maps, record = cli_maps(out, [row], TINY_RESNET, method)
    png = [f["png"] for f in record["outputs"][0]["files"].values()
           if isinstance(f, dict) and "png" in f][0]
    expected = np.asarray(Image.open(out / png).convert("RGB"))
    model = relevance.load(TINY_RESNET)
    picture = model.input_images(x[:1])[0]
    assert np.array_equal(picture, np.asarray(Image.open(out / "row.input.png").convert("RGB")))
    drawn = relevance.render.overlay(picture, maps[0], style=style)
    assert drawn.dtype == np.uint8 and drawn.shape == (12, 12, 3)
    assert np.array_equal(drawn, expected)


def test_overlay_refuses_mismatched_shapes_and_styles():
    image = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(relevance.InputError, match="map is 4×4 but the image is 4×5"):
        relevance.render.overlay(image, np.zeros((4, 4), np.float32))
    with pytest.raises(relevance.InputError, match="unknown style"):
        relevance.render.overlay(image, np.zeros((4, 5), np.float32), style="loud")
