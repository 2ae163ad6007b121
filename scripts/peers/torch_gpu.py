#!/usr/bin/env python3
"""PyTorch's own training images/s for prunebench's `resnet20-b` / `resnet56-b`, on a GPU (or the CPU), as the peer
that scripts/gpu-check/run.sh measures the `torch` backend against on the same device.

Repo-local (the shared peer in ../shared does not travel to the GPU machine) and self-contained: torch only, no
torchvision. The networks are the project's option-B CIFAR ResNets exactly (src/archs/resnet.ts):
  - 3x3 convs without bias, each followed by BN (eps 1e-5, running-stat momentum 0.1 = tfjs's 0.9 decay);
  - the stride-2 3x3 conv pads the way TF's 'same' does on an even input: nothing before, one row/column after
    (PyTorch's padding=1 would pad both sides and shift every window by a pixel);
  - the downsampling shortcut is a 1x1 stride-2 conv ('valid') + BN;
  - global average pooling, then a linear classifier with bias;
  - PyTorch's default init, which is the project's `torch-default` (U(+-1/sqrt(fan_in)) for weights and biases).
Parameter counts must equal `bench archs`' (tested in test/gpu-check.test.ts).

Timing: SGD (momentum 0.9, weight decay 5e-4) on random CIFAR-shaped batches gathered from a device-resident set,
warm-up steps first, then `--steps` timed steps bracketed by torch.cuda.synchronize(); one JSON line per
architecture. `--settings matched` (default) runs with the torch backend's defaults (cuDNN deterministic, benchmark
off, TF32 off); `--settings default` runs with PyTorch's own defaults (cuDNN may pick non-deterministic algorithms,
TF32 convolutions allowed), for reference.

usage: python3 scripts/peers/torch_gpu.py [--device cuda] [--arch resnet20-b,resnet56-b] [--batch 128]
                                          [--steps 50] [--warmup 10] [--settings matched|default] [--params-only]
"""
import argparse, json, os, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class TFSame(nn.Module):
    """Pads (left 0, right 1, top 0, bottom 1): TF 'same' for a 3x3 stride-2 conv on an even-sized input."""

    def forward(self, x):
        return F.pad(x, (0, 1, 0, 1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        down = stride != 1
        self.pad = TFSame() if down else nn.Identity()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 0 if down else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if down else None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(self.pad(x))))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


def resnet_b(depth, num_classes=10):
    n = (depth - 2) // 6
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage, cout in enumerate((16, 32, 64)):
        for i in range(n):
            layers.append(Block(cin, cout, 2 if stage > 0 and i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes)]
    return nn.Sequential(*layers)


ARCHS = {"resnet20-b": lambda: resnet_b(20), "resnet56-b": lambda: resnet_b(56)}


def param_count(model):
    return sum(p.numel() for p in model.parameters())


def configure(settings, device):
    if settings == "matched":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if device == "cpu":
        torch.set_num_threads(int(os.environ.get("PEER_THREADS", "1")))


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(name, device, batch, steps, warmup, settings):
    torch.manual_seed(0)
    model = ARCHS[name]().to(device)
    # A set of a few batches resident on the device: each step gathers a random batch, as prunebench's loop does.
    pool = max(4, min(16, steps)) * batch
    x = torch.randn(pool, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (pool,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()
    g = torch.Generator(device="cpu").manual_seed(1)

    def step():
        idx = torch.randint(0, pool, (batch,), generator=g).to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()

    for _ in range(warmup):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    seconds = time.perf_counter() - t
    row = {"peer": "pytorch", "torch": torch.__version__, "arch": name, "device": device, "settings": settings,
           "batch": batch, "steps": steps, "train_img_per_s": round(steps * batch / seconds, 1),
           "params": param_count(model)}
    if device.startswith("cuda"):
        row["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--arch", default="resnet20-b,resnet56-b")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--settings", choices=("matched", "default"), default="matched")
    ap.add_argument("--params-only", action="store_true", help="print each network's parameter count and exit")
    a = ap.parse_args()
    names = a.arch.split(",")
    for n in names:
        if n not in ARCHS:
            sys.exit(f"torch_gpu.py: unknown --arch {n}; valid: {', '.join(ARCHS)}")
    if a.params_only:
        for n in names:
            print(json.dumps({"arch": n, "params": param_count(ARCHS[n]())}), flush=True)
        return
    device = "cuda:0" if a.device == "cuda" else a.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("torch_gpu.py: --device cuda but torch.cuda.is_available() is False")
    configure(a.settings, device)
    for n in names:
        print(json.dumps(measure(n, device, a.batch, a.steps, a.warmup, a.settings)), flush=True)


if __name__ == "__main__":
    main()
