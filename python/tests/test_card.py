"""A model card given as a dict reads exactly as the same card given as a file to the command
line: class names, preprocessing of image files, and the same errors."""

import json

import numpy as np
import pytest

import relevance
from conftest import FIXTURES, cli_error, run_cli

TINY_RESNET = FIXTURES / "import" / "tiny_resnet.onnx"
CARD = {"classes": ["ant", "bee", "cat", "dog"], "normalization": {"kind": "imagenet"},
        "resize": {"kind": "stretch"}}


def test_a_card_dict_is_read_as_the_card_file(tmp_path):
    from PIL import Image

    picture = tmp_path / "picture.png"
    pixels = np.random.default_rng(5).integers(0, 256, (20, 17, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(picture)
    card_file = tmp_path / "card.json"
    card_file.write_text(json.dumps(CARD))
    model = relevance.load(TINY_RESNET, card=CARD)
    assert model.classes == CARD["classes"]
    out = run_cli("predict", "--model", TINY_RESNET, "--card", card_file, picture).stdout
    record = json.loads(out.splitlines()[0])
    probs = model.predict([picture])[0]
    assert record["class"] == CARD["classes"][int(probs.argmax())]
    assert model.explain([picture], "saliency").tobytes() == \
        relevance.load(TINY_RESNET, card=card_file).explain([picture], "saliency").tobytes()


def test_a_bad_card_dict_is_a_model_error_with_the_files_message(tmp_path):
    bad = {"classes": ["a", "b"], "num_classes": 3}
    card_file = tmp_path / "model.card.json"
    card_file.write_text(json.dumps(bad))
    want = cli_error("predict", "--model", TINY_RESNET, "--card", card_file,
                     FIXTURES / "import" / "tiny_resnet.input.npy")
    with pytest.raises(relevance.ModelError) as e:
        relevance.load(TINY_RESNET, card=bad)
    # the messages name the card file: the CLI's, and the temporary one the dict was written to
    assert str(e.value).split(": ", 1)[1] == want.split(": ", 1)[1]
