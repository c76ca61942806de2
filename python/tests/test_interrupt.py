"""Ctrl-C (SIGINT) during a long call raises KeyboardInterrupt at the next batch or chunk of
images, long before the call would have ended, and leaves the model (and the studies) usable."""

import os
import signal
import shutil
import threading
import time

import numpy as np
import pytest

import relevance
from conftest import FIXTURES, run_cli

TINY_RESNET = FIXTURES / "import" / "tiny_resnet.onnx"


@pytest.fixture(autouse=True)
def python_handles_sigint():
    """Python's own Ctrl-C handler, as in an interactive session: a process started in the
    background by a non-interactive shell (a CI job) inherits SIGINT as ignored, and Python
    then leaves it ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupt_after(seconds):
    """Sends SIGINT to this process after `seconds` (Python raises KeyboardInterrupt in the
    main thread at its next signal check)."""
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_stops_explain_between_batches():
    model = relevance.load(TINY_RESNET)
    x = np.random.default_rng(0).standard_normal((8, 3, 12, 12)).astype(np.float32)
    options = {"window": 1, "stride": 1}
    model.explain(x, "occlusion", target=0, **options)  # prepares and caches the method
    start = time.perf_counter()
    model.explain(x, "occlusion", target=0, **options)  # one batch of 8
    per_batch = time.perf_counter() - start
    # enough batches for about 4 s of work whatever the build's speed (a release build is
    # fast enough to finish 40 batches before a timer thread fires), and the signal well
    # after the call has started
    batches = max(40, int(4.0 / per_batch))
    delay = max(2 * per_batch, 0.2)
    timer = interrupt_after(delay)
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        model.explain(np.concatenate([x] * batches), "occlusion", target=0, **options)
    elapsed = time.perf_counter() - start
    timer.cancel()
    # honoured at the first check after the signal, long before all the batches are done
    assert elapsed < delay + 0.25 * batches * per_batch, (elapsed, per_batch, batches)
    assert model.explain(x[:1], "saliency").shape == (1, 3, 12, 12)


def test_ctrl_c_stops_a_study_between_chunks_and_it_resumes(tmp_path):
    """SIGINT is sent as soon as the first chunk's per-image results are cached; the study stops
    at a later chunk check without writing its summary, and the same call then resumes."""
    shutil.copy(TINY_RESNET, tmp_path / "m.onnx")
    # 50 chunks of 8 at 32 px: seconds of work even in a release build, so the signal (the
    # binding looks for it every 50 ms) arrives long before the last chunk
    images = 400
    run_cli("data", "synth", "--out", tmp_path / "data", "--n", images, "--size", "32")
    out = tmp_path / "faith"
    options = dict(split="all", methods=["occlusion(window=1,stride=1)"], step="1px",
                   no_progress=True)
    cached = lambda: [p for p in (out / "per_image").rglob("*.json")]
    stop_watching = threading.Event()

    def interrupt_when_a_chunk_is_cached():
        while not stop_watching.is_set():
            if out.joinpath("per_image").is_dir() and cached():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=interrupt_when_a_chunk_is_cached)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            relevance.studies.faithfulness(tmp_path / "m.onnx", tmp_path / "data", out, **options)
    finally:
        stop_watching.set()
        watcher.join()
    done = len(cached())
    assert not (out / "summary.json").exists()
    assert 0 < done < images, done
    # the stop request is withdrawn and the finished images are reused
    summary = relevance.studies.faithfulness(tmp_path / "m.onnx", tmp_path / "data", out,
                                             **options)
    assert summary["work"] == {"computed": images - done, "reused": done}
