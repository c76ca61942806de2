import os
from typing import Any, Dict, Optional, Union

from . import metrics as metrics, render as render, studies as studies
from ._native import Error as Error, InputError as InputError, MethodError as MethodError
from ._native import Model as Model, ModelError as ModelError, __version__ as __version__
from ._native import init as init

def load(path: Union[str, os.PathLike], card: Union[str, os.PathLike, Dict[str, Any], None] = None,
         arch: Optional[str] = None) -> Model: ...
def from_torch(module: Any, example_input: Any,
               card: Union[str, os.PathLike, Dict[str, Any], None] = None,
               opset: int = 17) -> Model: ...
