"""The study functions run `relevance <study>` in-process: the dict each returns is the
summary.json it wrote, and equals what the command line writes for the same arguments (all but
the program path in `command`)."""

import json
import shutil

import pytest

import relevance
from conftest import FIXTURES, run_cli

TINY_RESNET = FIXTURES / "import" / "tiny_resnet.onnx"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Two copies of the tiny ResNet (an "ensemble") and a small synthetic data set."""
    root = tmp_path_factory.mktemp("study")
    models = [root / "a.onnx", root / "b.onnx"]
    for m in models:
        shutil.copy(TINY_RESNET, m)
    run_cli("data", "synth", "--out", root / "data", "--n", "40", "--size", "16")
    return root, models, root / "data"


STUDIES = [
    ("faithfulness", {"methods": ["saliency", "grad-cam"], "step": "0.1", "save_maps": True}),
    ("stability", {"methods": ["saliency"], "top_k": 0.2}),
    ("variability", {"methods": ["grad-cam"], "clusters": 2}),
    ("compare", {"methods": ["saliency", "grad-cam"]}),
    ("sanity", {"methods": ["saliency"], "keep_batchnorm": True}),
    ("quality", {"methods": ["saliency", "random"], "regions": 4, "faithfulness_runs": 5,
                 "sensitivity_samples": 2}),
]


def canonical(summary):
    """The summary without its command's program path, as comparable text (NaN included)."""
    summary = dict(summary)
    command = summary.pop("command")
    return json.dumps(summary, sort_keys=True), command[1:]


@pytest.mark.parametrize("study,options", STUDIES, ids=[s for s, _ in STUDIES])
def test_study_summary_equals_its_file_and_the_clis(setup, study, options):
    root, models, data = setup
    out = root / f"py-{study}"
    summary = getattr(relevance.studies, study)(models, data, out, limit=4, no_progress=True,
                                                **options)
    written = json.loads((out / "summary.json").read_text())
    assert canonical(summary) == canonical(written)
    argv = relevance.studies.command(study, models, data, root / f"cli-{study}", limit=4,
                                     no_progress=True, **options)
    run_cli(*argv)
    cli = json.loads((root / f"cli-{study}" / "summary.json").read_text())
    ours, our_command = canonical(summary)
    theirs, their_command = canonical(cli)
    assert ours == theirs
    # the command recorded is `relevance <argv>`, not the Python interpreter's command line
    assert summary["command"][0] == "relevance"
    assert our_command == relevance.studies.command(study, models, data, out, limit=4,
                                                    no_progress=True, **options)
    assert their_command == [str(a) for a in argv]
    assert sorted(p.name for p in out.iterdir()) == \
        sorted(p.name for p in (root / f"cli-{study}").iterdir())


def test_study_flags_are_the_commands():
    argv = relevance.studies.command("faithfulness", "m.onnx", "data", "out", limit=3,
                                     save_maps=True, road=False, methods=["a", "b(x=1)"],
                                     step=None)
    assert argv == ["faithfulness", "--models", "m.onnx", "--data", "data", "--out", "out",
                    "--limit", "3", "--save-maps", "--methods", "a", "--methods", "b(x=1)"]


def test_study_errors_are_the_commands(setup, tmp_path):
    root, models, data = setup
    from conftest import cli_error
    want = cli_error("faithfulness", "--models", models[0], "--data", data, "--out", tmp_path,
                     "--methods", "nope")
    with pytest.raises(relevance.Error) as e:
        relevance.studies.faithfulness(models[0], data, tmp_path, methods=["nope"])
    assert str(e.value) == want
