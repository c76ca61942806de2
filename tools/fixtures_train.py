"""Reference fixtures for the training code (tests/train_*.rs), computed with PyTorch.

Writes tests/fixtures/train/:
  optim.safetensors   one parameter pair updated for three steps by torch.optim.SGD
                      (momentum 0.9, weight decay) and torch.optim.Adam (weight decay) on given
                      gradients: p0/*, g{1,2,3}/*, sgd{1,2,3}/*, adam{1,2,3}/*
  step.safetensors    small_cnn (dropout 0) with the reference weights of
                      tools/reference_weights.py, in train mode, two SGD steps on one batch with
                      class-weighted cross-entropy: input, labels, loss1, and every parameter and
                      BN running statistic after step 2 (after/<key>)

Run: python3 tools/fixtures_train.py   (seconds; needs torch, safetensors, numpy)
"""
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from reference_weights import load_reference_weights  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "train")


def small_cnn(num_classes: int, in_channels: int = 3, dropout: float = 0.2) -> torch.nn.Module:
    """The twin of relevance's `small_cnn` (same module names, so the same state-dict keys)."""
    layers = []
    c = in_channels
    for i, w in enumerate([16, 32, 64, 128]):
        layers += [torch.nn.Conv2d(c, w, 3, padding=1, bias=False), torch.nn.BatchNorm2d(w), torch.nn.ReLU()]
        if i < 3:
            layers.append(torch.nn.MaxPool2d(2, 2))
        c = w

    class SmallCnn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(*layers)
            self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
            self.classifier = torch.nn.Sequential(torch.nn.Dropout(dropout), torch.nn.Linear(c, num_classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return SmallCnn()


def formula(shape, a, b):
    n = int(np.prod(shape))
    return torch.from_numpy(np.sin(a * np.arange(n, dtype=np.float64) + b).astype(np.float32).reshape(shape))


def optim_fixture():
    p0 = {"w": formula((3, 4), 0.9, 0.3), "b": formula((5,), 1.3, -0.2)}
    grads = [{k: formula(v.shape, 0.5 + 0.21 * s, 0.7 * s) for k, v in p0.items()} for s in (1, 2, 3)]
    out = {f"p0/{k}": v for k, v in p0.items()}
    for s, g in enumerate(grads, 1):
        out.update({f"g{s}/{k}": v for k, v in g.items()})
    for name, make in [
        ("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01)),
        ("adam", lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
    ]:
        params = {k: torch.nn.Parameter(v.clone()) for k, v in p0.items()}
        opt = make(list(params.values()))
        for s, g in enumerate(grads, 1):
            for k, p in params.items():
                p.grad = g[k].clone()
            opt.step()
            out.update({f"{name}{s}/{k}": p.detach().clone() for k, p in params.items()})
    save_file(out, os.path.join(OUT, "optim.safetensors"))


def step_fixture():
    torch.manual_seed(0)
    model = small_cnn(2, dropout=0.0)
    load_reference_weights(model)
    model.train()
    x = formula((4, 3, 16, 16), 0.37, 0.2)
    labels = torch.tensor([0, 1, 1, 0])
    weight = torch.tensor([0.75, 1.5])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), labels, weight=weight)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    out = {"input": x, "labels": labels.float(), "class_weights": weight, "loss1": losses[0].reshape(1),
           "loss2": losses[1].reshape(1)}
    for k, v in model.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            out[f"after/{k}"] = v.detach().clone().contiguous()
    save_file(out, os.path.join(OUT, "step.safetensors"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    optim_fixture()
    step_fixture()
    print("wrote", os.path.abspath(OUT))
