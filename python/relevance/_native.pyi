"""Type stubs of the native module (the Rust engine)."""

import os
from typing import Any, List, Optional, Sequence, Tuple, Union

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
