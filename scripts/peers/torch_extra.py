#!/usr/bin/env python3
"""PyTorch peers for the benchmark architectures that the shared peer script lacks.

The measurement itself (the timed steps, the OpenBLAS kernel check and re-exec, the
BLAS report, the JSON line per architecture) is the shared script's
(../shared/peers/torch_throughput.py, or $TORCH_PEER): this file loads it as a module,
adds its own networks to the shared ARCHS table and runs the shared main(), so both
peers measure the same way.

usage: /usr/bin/python3 scripts/peers/torch_extra.py [--threads 1] [--batch 128]
                                                     [--arch lenet5-caffe,vgg16-bn] [--steps 5]
"""
import importlib.util, os, sys

import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("TORCH_PEER") or os.path.join(HERE, "..", "..", "..", "shared", "peers", "torch_throughput.py")


def load_shared():
    spec = importlib.util.spec_from_file_location("torch_throughput", SHARED)
    if spec is None or spec.loader is None:
        sys.exit(f"shared PyTorch peer not found: {SHARED} (set TORCH_PEER)")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lenet5_caffe():  # ShrinkBench's MnistNet; src/archs/lenet5-caffe.ts
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


def vgg16_bn():  # CIFAR VGG-16 with BN as Li et al. prune it; src/archs/vgg.ts ("li" head)
    layers, cin = [], 3
    for c in VGG16:
        if c == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
        cin = c
    layers += [nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 10)]
    return nn.Sequential(*layers)


EXTRA = {"lenet5-caffe": (lenet5_caffe, (1, 28, 28)), "vgg16-bn": (vgg16_bn, (3, 32, 32))}

if __name__ == "__main__":
    shared = load_shared()
    shared.ARCHS.update(EXTRA)
    shared.main()
