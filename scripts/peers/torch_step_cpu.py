#!/usr/bin/env python3
"""CPU time per training step of the shared PyTorch peer's network, for comparisons on a busy machine.

The network, data, optimizer and step are the shared peer's (../shared/peers/torch_throughput.py, or $TORCH_PEER,
loaded as a module like torch_extra.py does); only the clock differs: process CPU time (time.process_time) instead
of wall time, so other processes' load does not count. Prints one JSON line per round.

usage: OMP_NUM_THREADS=1 /usr/bin/python3 scripts/peers/torch_step_cpu.py [--arch mlp] [--batch 128] [--steps 300] [--rounds 1]
"""
import argparse, importlib.util, json, os, sys, time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("TORCH_PEER") or os.path.join(HERE, "..", "..", "..", "shared", "peers", "torch_throughput.py")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="mlp")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rounds", type=int, default=1)
    a = p.parse_args()
    spec = importlib.util.spec_from_file_location("torch_throughput", SHARED)
    if spec is None or spec.loader is None:
        sys.exit(f"shared PyTorch peer not found: {SHARED} (set TORCH_PEER)")
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    peer.drop_openblas_override()  # OpenBLAS's own kernels where they compute correctly, as the peer measures
    torch.set_num_threads(1)
    torch.manual_seed(0)
    build, shape = peer.ARCHS[a.arch]
    model = build()
    x = torch.randn(a.batch, *shape); y = torch.randint(0, 10, (a.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step():
        opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
    for _ in range(20): step()
    for r in range(a.rounds):
        c = time.process_time()
        for _ in range(a.steps): step()
        print(json.dumps({"peer": "pytorch", "arch": a.arch, "blas": peer.blas_in_use(), "round": r,
                          "cpu_ms_per_step": round((time.process_time() - c) / a.steps * 1000, 4)}), flush=True)


if __name__ == "__main__":
    main()
