"""Type stubs of the native module (the Rust engine)."""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

Inputs = Union[npt.NDArray[np.float32], Sequence[Union[str, os.PathLike, npt.NDArray[np.uint8], Any]]]
TargetLike = Union[str, int, None]

class Error(Exception): ...
class ModelError(Error): ...
class MethodError(Error): ...
class InputError(Error): ...

class Model:
    """A model loaded by the engine; methods are prepared once per spec and options and cached.
    Safe to share between threads; long calls release the GIL and honour Ctrl-C between
    batches of 8 inputs."""

    @property
    def classes(self) -> List[str]: ...
    @property
    def input_shape(self) -> Tuple[int, int, int]: ...
    @property
    def layers(self) -> List[str]: ...
    def predict(self, x: Inputs) -> npt.NDArray[np.float32]:
        """Class probabilities [N, K] (softmax, or sigmoid for a binary-logit head)."""
    def logits(self, x: Inputs) -> npt.NDArray[np.float32]:
        """Logits [N, K]."""
    def explain(self, x: Inputs, method: str, target: TargetLike = None,
                **options: Any) -> npt.NDArray[np.float32]:
        """Maps of `method` (a `relevance explain --method` spec) for `target` ("pred", "all",
        a class index or name): [N, C, H, W] for input-space methods, [N, H, W] for CAMs, with
        a class axis after N for target="all". `options` are the command's method flags:
        layer, steps, integration, samples, noise, window, stride, baseline, seed, batch,
        resnet_skip, relevance_start."""
    def concepts(self, x: Inputs, layer: str, top: int = 5,
                 concepts: Optional[Sequence[Union[int, Sequence[int]]]] = None,
                 composite: str = "epsilon-plus-flat", resnet_skip: str = "zennit",
                 start: str = "logit", target: TargetLike = None,
                 batch: int = 32) -> Dict[str, Any]:
        """CRP (Achtibat et al. 2023) at `layer`, as `relevance concepts` computes it per input:
        targets [N], explained [N], relevance [N, C] (R_c, the layer's LRP relevance summed
        over positions), top [N, top] and share [N, top] (R_c / (Σ|R| + 1e-10)), sets (the
        channel sets drawn: each top channel, then `concepts`) and heatmaps [N, sets, H, W]
        (conditional relevance, summed over input channels), equal to its .npy files."""
    def input_images(self, x: Inputs) -> npt.NDArray[np.uint8]:
        """The inputs as the model saw them, RGB uint8 [N, H, W, 3]."""

def load(path: str, card: Optional[str] = None, arch: Optional[str] = None) -> Model: ...
def load_onnx_bytes(data: bytes, card: Optional[str] = None) -> Model: ...
def overlay(image: npt.NDArray[np.uint8], map: npt.NDArray[np.float32], style: str = "signed",
            alpha: float = 0.7, colormap: Optional[str] = None) -> npt.NDArray[np.uint8]: ...
def insertion_deletion(model: Model, x: Inputs, maps: npt.NDArray[np.float32], style: str = ...,
                       target: Any = ..., preset: str = ..., step: Optional[str] = ...,
                       ties: Optional[str] = ..., score: Optional[str] = ...,
                       insertion_substrate: Optional[str] = ...,
                       deletion_substrate: Optional[str] = ...) -> dict: ...
def init(arch: str, num_classes: int = 1000, channels: int = 3, input_size: int = 224,
         seed: int = 0) -> Model:
    """A built-in architecture with freshly drawn weights."""
def pixel_flipping(model: Model, x: Inputs, maps: npt.NDArray[np.float32],
                   pixels_per_step: int = ..., order: str = ..., baseline: str = ...,
                   target: Any = ..., score: str = ..., style: str = ...) -> dict: ...
def region_perturbation(model: Model, x: Inputs, maps: npt.NDArray[np.float32], patch: int = ...,
                        regions: int = ..., order: str = ..., baseline: str = ...,
                        target: Any = ..., score: str = ..., style: str = ...) -> dict: ...
def pointing_game(maps: npt.NDArray[np.float32], masks: npt.NDArray[np.bool_],
                  tolerance: float = ..., style: str = ...) -> dict: ...
def relevance_mass_accuracy(maps: npt.NDArray[np.float32], masks: npt.NDArray[np.bool_],
                            positive_only: bool = ..., style: str = ...) -> List[Optional[float]]: ...
def relevance_rank_accuracy(maps: npt.NDArray[np.float32], masks: npt.NDArray[np.bool_],
                            style: str = ...) -> List[Optional[float]]: ...
def similarity(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32],
               valid: Optional[npt.NDArray[np.bool_]] = ..., top_fraction: float = ...,
               style: str = ...) -> dict: ...
def sparseness(maps: npt.NDArray[np.float32], epsilon: float = ..., style: str = ...) -> List[float]: ...
def complexity(maps: npt.NDArray[np.float32], epsilon: float = ..., style: str = ...) -> List[float]: ...
def model_parameter_randomisation(model: Model, x: Inputs, method: str, target: Any = ...,
                                  cascade: str = ..., include_batchnorm: bool = ...,
                                  seed: int = ..., signed: bool = ..., top_fraction: float = ...,
                                  fresh: Optional[Dict[str, npt.NDArray[np.float32]]] = ...,
                                  **options: Any) -> dict: ...
def run_command(argv: List[str]) -> None:
    """Runs `relevance <argv>` in this process (the studies); Ctrl-C stops it between chunks."""
