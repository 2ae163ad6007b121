/**
 * Deterministic, realistic-looking ReportData for tests, screenshots and the 10,000-run scale benchmark.
 * Nothing here is a measurement: accuracies follow a simple made-up model of how pruning hurts a network.
 */
import type { LayerKind, ReferenceRow } from "../src/core/types.js";
import { makeRng } from "../src/core/rng.js";
import type { ClassRow, EpochRow, LayerRow, ReportData, RunRow, SweepInfo } from "./model.js";

interface LayerSpec {
  name: string;
  kind: Extract<LayerKind, "conv" | "dense">;
  shape: number[];
  /** Output spatial positions (1 for dense). */
  positions: number;
}

function conv(name: string, k: number, cin: number, cout: number, hw: number): LayerSpec {
  return { name, kind: "conv", shape: [k, k, cin, cout], positions: hw * hw };
}
function dense(name: string, cin: number, cout: number): LayerSpec {
  return { name, kind: "dense", shape: [cin, cout], positions: 1 };
}

function resnet(depth: number): LayerSpec[] {
  const n = (depth - 2) / 6;
  const out: LayerSpec[] = [conv("conv1", 3, 3, 16, 32)];
  const widths = [16, 32, 64];
  let cin = 16;
  widths.forEach((w, s) => {
    const hw = 32 >> s;
    for (let b = 0; b < n; b++) {
      out.push(conv(`s${s + 1}.b${b + 1}.conv1`, 3, cin, w, hw));
      out.push(conv(`s${s + 1}.b${b + 1}.conv2`, 3, w, w, hw));
      if (cin !== w) out.push(conv(`s${s + 1}.b${b + 1}.shortcut`, 1, cin, w, hw));
      cin = w;
    }
  });
  out.push(dense("fc", 64, 10));
  return out;
}

const ARCHS: Record<string, { layers: LayerSpec[]; acc: Record<string, number>; latencyMs: number; fragility: number }> = {
  lenet5: {
    layers: [conv("conv1", 5, 1, 6, 24), conv("conv2", 5, 6, 16, 8), dense("fc1", 256, 120), dense("fc2", 120, 84), dense("fc3", 84, 10)],
    acc: { mnist: 0.991, cifar10: 0.652 },
    latencyMs: 1.9,
    fragility: 1.3,
  },
  resnet20: { layers: resnet(20), acc: { mnist: 0.995, cifar10: 0.912 }, latencyMs: 21.5, fragility: 1.0 },
  vgg11: {
    layers: [
      conv("conv1", 3, 3, 64, 32), conv("conv2", 3, 64, 128, 16), conv("conv3", 3, 128, 256, 8), conv("conv4", 3, 256, 256, 8),
      conv("conv5", 3, 256, 512, 4), conv("conv6", 3, 512, 512, 4), conv("conv7", 3, 512, 512, 2), conv("conv8", 3, 512, 512, 2),
      dense("fc1", 512, 512), dense("fc2", 512, 512), dense("fc3", 512, 10),
    ],
    acc: { mnist: 0.994, cifar10: 0.897 },
    latencyMs: 64.0,
    fragility: 0.7,
  },
  mlp: { layers: [dense("fc1", 784, 300), dense("fc2", 300, 100), dense("fc3", 100, 10)], acc: { mnist: 0.982, cifar10: 0.531 }, latencyMs: 0.6, fragility: 1.5 },
  resnet56: { layers: resnet(56), acc: { mnist: 0.996, cifar10: 0.933 }, latencyMs: 58.0, fragility: 0.85 },
};

interface MethodSpec {
  method: string;
  label: string;
  /** Multiplies the accuracy drop. */
  quality: number;
  /** true: per-layer sparsity follows layer size (global ranking); false: uniform. */
  global: boolean;
}

const METHODS: MethodSpec[] = [
  { method: "global_magnitude", label: "global_magnitude", quality: 1.0, global: true },
  { method: "layer_magnitude", label: "layer_magnitude", quality: 1.5, global: false },
  { method: "random", label: "random", quality: 6.0, global: false },
  { method: "global_gradient", label: "global_gradient", quality: 1.2, global: true },
  { method: "layer_gradient", label: "layer_gradient", quality: 1.7, global: false },
  { method: "random", label: "random(scope=global)", quality: 5.0, global: true },
  { method: "snip", label: "snip", quality: 1.8, global: true },
  { method: "synflow", label: "synflow", quality: 1.4, global: true },
  { method: "global_magnitude", label: "global_magnitude(finetune_epochs=20)", quality: 0.8, global: true },
  { method: "grasp", label: "grasp", quality: 2.0, global: true },
];
const ARCH_ORDER = ["lenet5", "resnet20", "vgg11", "mlp", "resnet56"];
const DATASETS = ["mnist", "cifar10"];
const TARGETS = [0.5, 0.75, 0.9, 0.95, 0.98];
const EXTRA_TARGETS = [0.3, 0.6, 0.8, 0.97, 0.99];

function layerParams(l: LayerSpec): { kernel: number; bias: number } {
  return { kernel: l.shape.reduce((a, b) => a * b, 1), bias: l.shape[l.shape.length - 1] };
}

/** Per-layer densities of prunable layers giving overall prunable sparsity `s`. */
function layerDensities(sizes: number[], prunable: boolean[], s: number, global: boolean): number[] {
  if (!global) return sizes.map((_, i) => (prunable[i] ? 1 - s : 1));
  const total = sizes.reduce((a, b, i) => a + (prunable[i] ? b : 0), 0);
  const want = (1 - s) * total;
  const dens = (c: number) => sizes.map((n, i) => (prunable[i] ? Math.min(1, c * Math.pow(n, -0.35)) : 1));
  let lo = 0;
  let hi = 1e6;
  for (let it = 0; it < 100; it++) {
    const mid = (lo + hi) / 2;
    const kept = dens(mid).reduce((a, d, i) => a + (prunable[i] ? d * sizes[i] : 0), 0);
    if (kept < want) lo = mid;
    else hi = mid;
  }
  return dens((lo + hi) / 2);
}

/**
 * `nRuns` runs (exactly) of a synthetic sweep: 3 methods x 2 archs x 1-2 datasets x 5 sparsities x 3 seeds at small
 * sizes, growing methods (to 10), archs (to 5), sparsities (to 10) and then seeds for larger `nRuns`. About 1% of the
 * runs (at least 2 when nRuns >= 10) failed or diverged. Every done run has layer rows and fine-tuning epochs; one
 * run per dataset x arch x seed also has pretraining epochs. Two reference rows (published numbers) are included.
 */
export function syntheticReportData(nRuns: number, seed = 1): ReportData {
  const rnd = makeRng(seed, "synthetic-runs");
  const normal = () => {
    const u = Math.max(rnd(), 1e-12);
    const v = rnd();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const dims = { methods: 3, archs: 2, datasets: nRuns <= 90 ? 1 : 2, targets: 5, seeds: 3 };
  const product = () => dims.methods * dims.archs * dims.datasets * dims.targets * dims.seeds;
  while (product() < nRuns) {
    if (dims.methods < METHODS.length) dims.methods++;
    else if (dims.archs < ARCH_ORDER.length) dims.archs++;
    else if (dims.targets < 10) dims.targets++;
    else dims.seeds++;
  }
  const methods = METHODS.slice(0, dims.methods);
  const archs = ARCH_ORDER.slice(0, dims.archs);
  const datasets = DATASETS.slice(0, dims.datasets);
  const targets = [...TARGETS, ...EXTRA_TARGETS.slice(0, dims.targets - 5)].sort((a, b) => a - b);
  const seeds = Array.from({ length: dims.seeds }, (_, i) => i);

  const sweep: SweepInfo = {
    id: 1,
    name: "synthetic",
    gridFile: "benchmarks/synthetic.yaml",
    gridText: `name: synthetic\nmethods: [${methods.map((m) => m.label).join(", ")}]\narchs: [${archs.join(", ")}]\ndatasets: [${datasets.join(", ")}]\n`,
    createdAt: "2025-01-01T00:00:00.000Z",
    codeVersion: "0.1.0+synthetic",
    database: "results/synthetic.db",
  };

  const runs: RunRow[] = [];
  const layers: LayerRow[] = [];
  const epochs: EpochRow[] = [];
  const classes: ClassRow[] = [];
  // ~1% of the runs (at least 2 when nRuns >= 10) fail or diverge, at deterministic pseudo-random positions.
  const failing = new Map<number, "failed" | "diverged">();
  if (nRuns >= 10) {
    const pick = makeRng(seed, "synthetic-failures");
    const nFail = Math.max(2, Math.round(nRuns * 0.01));
    while (failing.size < nFail) {
      const idx = Math.floor(pick() * nRuns);
      if (!failing.has(idx)) failing.set(idx, failing.size % 2 === 0 ? "failed" : "diverged");
    }
  }
  const denseAcc = new Map<string, number>();
  const pretrained = new Set<string>();
  let i = 0;
  const t0 = Date.parse("2025-01-01T00:00:00.000Z");
  outer: for (const dataset of datasets)
    for (const arch of archs)
      for (const m of methods)
        for (const target of targets)
          for (const s of seeds) {
            if (i >= nRuns) break outer;
            const a = ARCHS[arch];
            const dk = `${dataset}|${arch}|${s}`;
            if (!denseAcc.has(dk)) denseAcc.set(dk, Math.min(0.999, a.acc[dataset] + 0.003 * normal()));
            const top1Dense = denseAcc.get(dk)!;
            const key = `${dataset}-${arch}-${m.label}-s${target}-seed${s}`;
            const specs = a.layers;
            const sizes = specs.map((l) => layerParams(l).kernel);
            const prunable = specs.map((l, li) => li > 0 || l.kind === "dense"); // first conv kept dense (common default)
            const dens = layerDensities(sizes, prunable, target, m.global);
            const paramsTotal = specs.reduce((acc, l) => acc + layerParams(l).kernel + layerParams(l).bias, 0);
            const prunableTotal = sizes.reduce((acc, n, li) => acc + (prunable[li] ? n : 0), 0);
            let nonzero = 0;
            let prunableNonzero = 0;
            let macsDense = 0;
            let macsEff = 0;
            const runLayers: LayerRow[] = specs.map((l, li) => {
              const p = layerParams(l);
              const nz = Math.round(p.kernel * dens[li]);
              nonzero += nz + p.bias;
              if (prunable[li]) prunableNonzero += nz;
              const macs = p.kernel * l.positions;
              macsDense += macs;
              macsEff += macs * (nz / p.kernel);
              return { runKey: key, name: l.name, kind: l.kind, shape: l.shape, params: p.kernel + p.bias, nonzero: nz + p.bias, macs, macsEffective: Math.round(macs * (nz / p.kernel)), prunable: prunable[li] };
            });
            const severity = 0.004 * Math.pow(target / (1 - target), 0.9);
            const drop = Math.max(-0.004, a.fragility * m.quality * severity * (dataset === "mnist" ? 0.15 : 1) + 0.004 * normal());
            const top1After = Math.max(0.1, Math.min(0.999, top1Dense - drop));
            const top1Before = Math.max(0.1, top1After - m.quality * target * target * 0.35 * (0.8 + 0.4 * rnd()));
            const latDense = a.latencyMs * (1 + 0.03 * normal());
            const latPruned = latDense * (1.02 + 0.03 * normal());
            const ftEpochs = m.label.includes("finetune_epochs=20") ? 20 : 8;
            const finetuneSeconds = ftEpochs * (a.latencyMs * 0.8) * (dataset === "mnist" ? 1 : 1.2) * (1 + 0.05 * rnd());
            const doPretrain = !pretrained.has(dk);
            pretrained.add(dk);
            const pretrainSeconds = doPretrain ? 10 * a.latencyMs * 1.5 : 0;
            const status: RunRow["status"] = failing.get(i) ?? "done";
            const startedAt = new Date(t0 + i * 60_000).toISOString();
            const total = pretrainSeconds + finetuneSeconds + 3 + rnd();
            const metrics: Record<string, number | null> =
              status === "done"
                ? {
                    top1_dense: top1Dense,
                    top5_dense: Math.min(1, top1Dense + (1 - top1Dense) * 0.8),
                    loss_dense: -Math.log(top1Dense) * 1.2,
                    top1_before: top1Before,
                    top5_before: Math.min(1, top1Before + (1 - top1Before) * 0.6),
                    loss_before: -Math.log(top1Before) * 1.3,
                    top1_after: top1After,
                    top5_after: Math.min(1, top1After + (1 - top1After) * 0.8),
                    loss_after: -Math.log(top1After) * 1.2,
                    val_top1_after: Math.min(0.999, top1After + 0.004 * normal()),
                    params_total: paramsTotal,
                    params_nonzero: nonzero,
                    params_prunable: prunableTotal,
                    compression_ratio: paramsTotal / nonzero,
                    sparsity: 1 - prunableNonzero / prunableTotal,
                    macs_dense: macsDense,
                    macs_effective: macsEff,
                    theoretical_speedup: macsDense / macsEff,
                    latency_dense_ms: latDense,
                    latency_pruned_ms: latPruned,
                    measured_speedup: latDense / latPruned,
                    latency_batch: 64,
                    latency_threads: 4,
                    pretrain_seconds: pretrainSeconds,
                    finetune_seconds: finetuneSeconds,
                    train_seconds: pretrainSeconds + finetuneSeconds * 0.9,
                    total_seconds: total,
                    train_img_per_s: 2000 / a.latencyMs,
                    peak_rss_mb: 300 + 10 * a.latencyMs,
                    best_epoch: ftEpochs - 1 - Math.floor(rnd() * 3),
                    train_images: ftEpochs * 50_000,
                    train_macs: 3 * macsEff * ftEpochs * 50_000,
                    train_step_seconds: finetuneSeconds * 0.9,
                    dense_pretrain_images: 10 * 50_000,
                    dense_pretrain_macs: 3 * macsDense * 10 * 50_000,
                    dense_pretrain_seconds: 10 * a.latencyMs * 1.5,
                    masked_nonzero: 0,
                  }
                : { top1_dense: top1Dense, params_total: paramsTotal, total_seconds: 5 + rnd() * 20 };
            runs.push({
              key,
              sweepIds: [1],
              database: sweep.database,
              status,
              method: m.method,
              methodLabel: m.label,
              arch,
              dataset,
              targetKind: "sparsity",
              targetValue: target,
              seed: s,
              backend: "tensorflow",
              tfjsVersion: "4.22.0",
              error:
                status === "failed"
                  ? "Error: worker exited with code 134 (JavaScript heap out of memory) during fine-tuning epoch 3"
                  : status === "diverged"
                    ? "Diverged: fine-tuning loss became NaN at epoch 2 (lr=0.1)"
                    : null,
              startedAt,
              finishedAt: new Date(t0 + i * 60_000 + total * 1000).toISOString(),
              metrics,
              config: { method: { name: m.method, params: {} }, arch, dataset, target: { kind: "sparsity", value: target }, seed: s },
            });
            if (status === "done") {
              // Per-class hits from a stream of their own (the other numbers stay as they were): classes 0-9 of 1,000
              // test images each, the harder classes (high labels) losing more.
              const crnd = makeRng(seed, `synthetic-classes:${key}`);
              for (const [phase, acc] of [["dense", top1Dense], ["before", top1Before], ["after", top1After]] as const) {
                const row: ClassRow = { runKey: key, phase, labels: [], names: [], correct: [], count: [] };
                for (let label = 0; label < 10; label++) {
                  const skew = phase === "dense" ? 0 : (top1Dense - acc) * (label - 4.5) / 4.5;
                  const a = Math.max(0, Math.min(1, acc - skew + 0.01 * (crnd() - 0.5)));
                  row.labels.push(label);
                  row.names.push(`class ${label}`);
                  row.correct.push(Math.round(a * 1000));
                  row.count.push(1000);
                }
                classes.push(row);
              }
              layers.push(...runLayers);
              if (doPretrain) {
                for (let e = 0; e < 10; e++) {
                  const v = top1Dense * (1 - 0.5 * Math.exp(-0.6 * (e + 1))) + 0.003 * normal();
                  epochs.push({ runKey: key, phase: "pretrain", epoch: e, loss: -Math.log(Math.min(0.999, v)), trainAcc: Math.min(1, v + 0.01), valAcc: Math.min(1, v), lr: 0.1, seconds: pretrainSeconds / 10, dnr: 0.5 - 0.01 * e });
                }
              }
              for (let e = 0; e < ftEpochs; e++) {
                const frac = 1 - Math.exp(-0.7 * (e + 1));
                const v = top1Before + (top1After - top1Before) * frac + 0.003 * normal();
                epochs.push({ runKey: key, phase: "finetune", epoch: e, loss: -Math.log(Math.max(0.05, Math.min(0.999, v))), trainAcc: Math.min(1, v + 0.015), valAcc: Math.min(1, Math.max(0, v)), lr: 0.01 * 0.5 * (1 + Math.cos((Math.PI * e) / ftEpochs)), seconds: finetuneSeconds / ftEpochs, dnr: 0.55 - 0.01 * e });
              }
            } else if (status === "diverged") {
              epochs.push({ runKey: key, phase: "finetune", epoch: 0, loss: 9.5, trainAcc: 0.1, valAcc: 0.1, lr: 0.1, seconds: 1, dnr: NaN });
            }
            i++;
          }

  const references: ReferenceRow[] = [
    {
      paper: "Han et al. 2015, Learning both Weights and Connections",
      source: "arXiv:1506.02626, Table 1 (LeNet-5)",
      dataset: "mnist",
      arch: "lenet5",
      method: "global_magnitude",
      target: { kind: "sparsity", value: 0.9 },
      metrics: {
        top1_after: { value: 99.23, unit: "%" },
        compression_ratio: { value: 12, unit: "x" },
        macs_effective: { value: 2 * 0.31e6, unit: "FLOPs(2xMACs)" },
      },
      note: "Their LeNet-5 is larger (431K params); numbers shown for orientation.",
    },
    {
      paper: "Blalock et al. 2020, What is the State of Neural Network Pruning?",
      source: "ShrinkBench, Fig. 7 (approximate)",
      dataset: "cifar10",
      arch: "resnet20",
      method: "global_magnitude",
      target: { kind: "sparsity", value: 0.9 },
      metrics: { top1_after: { value: 0.885, unit: "fraction" }, compression_ratio: { value: 8.6, unit: "x" }, theoretical_speedup: { value: 7.1, unit: "x" } },
    },
  ];

  return {
    title: `Synthetic sweep (${nRuns} runs)`,
    generatedAt: "2025-01-02T00:00:00.000Z",
    sweeps: [sweep],
    runs,
    layers,
    epochs,
    references,
    classes,
  };
}
