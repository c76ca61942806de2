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


# ---------------------------------------------------------------------------------------------
# Pseudo-random reference weights (Rust twin: `relevance::graph::init::random_reference_params`).
#
# The sine formula above is smooth along the flattened weight index, so a filter's weights vary
# as a sinusoid over input channels; in deep networks the products of such sinusoids cancel and
# the output stops depending on the input (VGG11 at 64 px: the two images' logits differ by
# 3e-7 while the logits are ~3). These weights are hashed instead, so every layer mixes its
# input like a randomly initialised network, and both languages compute them bit for bit:
#   h = splitmix64((t << 32) | i),  u = (2·(h >> 40) + 1) / 2^24 − 1   (exact, in (−1, 1))
#   weight of rank >= 2: u * sqrt(8 / fan_in)   (variance 8/(3 fan_in), 4/3 of He's: with He's
#       variance the SiLU/sigmoid-gated EfficientNets lose their signal (the logits of two images
#       differ by 4e-4 of their size), with 1.5x He's EfficientNet-B3 turns chaotic (float32 and
#       float64 gradients disagree); at 4/3 every zoo network responds to its input by 2-50 %
#       and float32 stays within ~1e-6 of float64)
#   BN weight (rank 1): 1 + 0.1 u;  running_var: 1 + 0.25 (1 + u);  everything else: 0.1 u
# with t the rank of the key among all sorted keys, as above.
# ---------------------------------------------------------------------------------------------
_SM_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_SM_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_SM_MUL2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _SM_GAMMA
        z = (z ^ (z >> np.uint64(30))) * _SM_MUL1
        z = (z ^ (z >> np.uint64(27))) * _SM_MUL2
        return z ^ (z >> np.uint64(31))


def random_reference_value(key: str, shape, t: int) -> np.ndarray:
    n = int(np.prod(shape)) if len(shape) else 1
    h = _splitmix64((np.uint64(t) << np.uint64(32)) | np.arange(n, dtype=np.uint64))
    u = (2.0 * (h >> np.uint64(40)).astype(np.float64) + 1.0) / 16777216.0 - 1.0
    if len(shape) >= 2:
        out = u * np.sqrt(8.0 / int(np.prod(shape[1:])))
    elif key.endswith("running_var"):
        out = 1.0 + 0.25 * (1.0 + u)
    elif key.endswith(".weight"):
        out = 1.0 + 0.1 * u
    else:
        out = 0.1 * u
    return out.astype(np.float32).reshape(shape)


@torch.no_grad()
def load_random_reference_weights(module: torch.nn.Module) -> torch.nn.Module:
    """Overwrites every parameter and float buffer of `module` with the hashed formula."""
    state = module.state_dict()
    keys = sorted(k for k in state if not k.endswith("num_batches_tracked"))
    new_state = {k: torch.from_numpy(random_reference_value(k, tuple(state[k].shape), t)) for t, k in enumerate(keys)}
    for k in state:
        if k.endswith("num_batches_tracked"):
            new_state[k] = state[k]
    module.load_state_dict(new_state)
    return module.eval()
