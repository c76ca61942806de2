"""`Model.concepts` equals `relevance concepts` (its concepts.json and .npy heatmaps) on the same
model and inputs: both run the library's `concepts_of` per input."""

import json

import numpy as np
import pytest

import relevance
from conftest import FIXTURES, run_cli

TINY_RESNET = FIXTURES / "import" / "tiny_resnet.onnx"
LAYER = "/conv1/Conv"  # 16 channels, 6 × 6


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """The fixture's two inputs, also as one .npy file per row for the CLI."""
    x = np.load(FIXTURES / "import" / "tiny_resnet.input.npy").astype(np.float32)
    folder = tmp_path_factory.mktemp("concept-inputs")
    files = []
    for i, row in enumerate(x):
        files.append(folder / f"row{i}.npy")
        np.save(files[-1], row)
    return x, files


def cli_concepts(out, files, *flags):
    run_cli("concepts", "--model", TINY_RESNET, "--layer", LAYER, "--out", out, "--quiet",
            *flags, *files)
    return json.loads((out / "concepts.json").read_text())


@pytest.mark.parametrize("flags,options", [
    ([], {}),
    (["--top", "3", "--concept", "1,2", "--concept", "7", "--composite", "epsilon-plus",
      "--start", "probability", "--batch", "2"],
     {"top": 3, "concepts": [[1, 2], 7], "composite": "epsilon-plus", "start": "probability",
      "batch": 2}),
    (["--target", "2", "--resnet-skip", "split"], {"target": 2, "resnet_skip": "split"}),
])
def test_concepts_equal_the_cli_files(tmp_path, rows, flags, options):
    x, files = rows
    records = cli_concepts(tmp_path / "cli", files, *flags)
    got = relevance.load(TINY_RESNET).concepts(x, LAYER, **options)
    assert got["targets"] == [r["target"] for r in records]
    assert got["relevance"].shape == (2, 16)
    for i, record in enumerate(records):
        assert got["explained"][i] == np.float32(record["explained"])
        channels = [c["channel"] for c in record["concepts"]]
        assert list(got["top"][i]) == channels
        # concepts.json holds the f32 values widened to f64: equal after narrowing back
        assert list(got["share"][i]) == [np.float32(c["relevance"]) for c in record["concepts"]]
        assert list(got["relevance"][i, channels]) == [np.float32(c["raw"])
                                                       for c in record["concepts"]]
        assert got["sets"][i] == [h["channels"] for h in record["heatmaps"]]
        for k, heatmap in enumerate(record["heatmaps"]):
            want = np.load(heatmap["npy"])
            np.testing.assert_array_equal(got["heatmaps"][i, k], want)


def test_the_ranking_is_the_relevance_per_channel_sorted(rows):
    """Independent of the CLI: the top channels are the arg-sort of R_c, and the shares are
    R_c / (Σ|R| + 1e-10)."""
    x, _ = rows
    got = relevance.load(TINY_RESNET).concepts(x, LAYER, top=16)
    for i in range(2):
        r = got["relevance"][i]
        np.testing.assert_array_equal(got["top"][i], np.argsort(-r, kind="stable"))
        np.testing.assert_allclose(got["share"][i], r[got["top"][i]] / (np.abs(r).sum() + 1e-10),
                                   rtol=1e-6)


def test_concept_errors_are_the_clis(tmp_path, rows):
    x, files = rows
    from conftest import cli_error
    model = relevance.load(TINY_RESNET)
    want = cli_error("concepts", "--model", TINY_RESNET, "--layer", "nope", "--out",
                     tmp_path, files[0])
    with pytest.raises(relevance.MethodError) as e:
        model.concepts(x, "nope")
    assert str(e.value) == want
    with pytest.raises(relevance.MethodError, match="channel 99 does not exist"):
        model.concepts(x, LAYER, concepts=[99])
    with pytest.raises(relevance.MethodError, match="unknown composite"):
        model.concepts(x, LAYER, composite="nope")
