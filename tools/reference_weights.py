"""Deterministic reference weights shared with the Rust side (`relevance::graph::init::reference_params`).

With t the rank of a state-dict key among all keys (num_batches_tracked excluded) in sorted order and
v_i = sin(0.731*i + 1.37*t + 0.1) for element i (float64, rounded to float32):
  weight of rank >= 2: v * sqrt(4 / fan_in);  BN weight (rank 1): 1 + 0.1 v;
  running_var: 1 + 0.25 (1 + v);  everything else: 0.1 v.
Fixtures generated with these weights need not ship the weights.
"""
import numpy as np
import torch


def reference_value(key: str, shape, t: int) -> np.ndarray:
    n = int(np.prod(shape)) if len(shape) else 1
    v = np.sin(0.731 * np.arange(n, dtype=np.float64) + (1.37 * t + 0.1))
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        out = v * np.sqrt(4.0 / fan_in)
    elif key.endswith("running_var"):
        out = 1.0 + 0.25 * (1.0 + v)
    elif key.endswith(".weight"):
        out = 1.0 + 0.1 * v
    else:
        out = 0.1 * v
    return out.astype(np.float32).reshape(shape)


@torch.no_grad()
def load_reference_weights(module: torch.nn.Module) -> torch.nn.Module:
    """Overwrites every parameter and float buffer of `module` with the reference formula."""
    state = module.state_dict()
    keys = sorted(k for k in state if not k.endswith("num_batches_tracked"))
    new_state = {k: torch.from_numpy(reference_value(k, tuple(state[k].shape), t)) for t, k in enumerate(keys)}
    for k in state:
        if k.endswith("num_batches_tracked"):
            new_state[k] = state[k]
    module.load_state_dict(new_state)
    return module.eval()
