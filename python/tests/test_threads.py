"""One `Model` shared by threads: calls run concurrently (the GIL is released inside the
engine) and every thread gets the maps a lone call gets."""

import threading

import numpy as np

import relevance
from conftest import FIXTURES

TINY_RESNET = FIXTURES / "import" / "tiny_resnet.onnx"
X = np.load(FIXTURES / "import" / "tiny_resnet.input.npy").astype(np.float32)
CALLS = [
    ("lrp:epsilon-plus-flat", {}),
    ("grad-cam", {}),
    ("integrated-gradients", {"steps": 8}),
    ("saliency", {}),
]


def test_a_model_shared_by_threads_gives_each_the_lone_result():
    model = relevance.load(TINY_RESNET)
    alone = {m: relevance.load(TINY_RESNET).explain(X, m, target=1, **o) for m, o in CALLS}
    concepts_alone = relevance.load(TINY_RESNET).concepts(X, "/conv1/Conv")["heatmaps"]
    results, errors = {}, []
    start = threading.Barrier(2 * len(CALLS) + 2)  # the workers, the CRP thread and this one

    def work(i, method, options):
        try:
            start.wait()
            for _ in range(3):  # the first calls race to prepare and cache the method
                results.setdefault((i, method), []).append(
                    model.explain(X, method, target=1, **options))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def crp():
        try:
            start.wait()
            results[("crp", "crp")] = [model.concepts(X, "/conv1/Conv")["heatmaps"]]
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, m, o)) for i in range(2) for m, o in CALLS]
    threads.append(threading.Thread(target=crp))
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join()
    assert not errors, errors
    for (i, method), maps in results.items():
        want = concepts_alone if method == "crp" else alone[method]
        for m in maps:
            np.testing.assert_array_equal(m, want)
    assert len(results) == 2 * len(CALLS) + 1
