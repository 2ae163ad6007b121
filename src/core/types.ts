/**
 * The values that cross stages, declared once: what a grid says (RunConfig and its parts), what the coordinator sends
 * a worker and gets back (Job, JobResult), what is stored per run (layer counts, epoch records, status). Every layer
 * imports these from here; this module imports nothing.
 */

export type OptimizerName = "sgd" | "adam";
export type LrScheduleName = "constant" | "step" | "cosine";

/** One training phase (dense pretraining or fine-tuning after pruning). */
export interface TrainConfig {
  epochs: number;
  batchSize: number;
  optimizer: OptimizerName;
  lr: number;
  /** SGD momentum (ignored by adam). */
  momentum: number;
  weightDecay: number;
  schedule: LrScheduleName;
  /** step schedule: multiply lr by `gamma` every `stepEpochs` epochs. */
  stepEpochs: number;
  gamma: number;
}

export interface DataConfig {
  /** Fraction of the training split held out for validation (model selection never looks at test). */
  valFraction: number;
  /** Use only the first N (shuffled, class-balanced) training images; null = all. */
  trainSubset: number | null;
  /** Evaluate on at most N test images; null = all. */
  testSubset: number | null;
}

/** Which tensors a method may prune. Conv and dense kernels are always candidates. */
export interface PrunablePolicy {
  biases: boolean;
  batchNorm: boolean;
  /** The final classifier layer's kernel. */
  classifier: boolean;
  /** The first layer's kernel (fed by raw pixels). */
  firstLayer: boolean;
}

export interface EvalConfig {
  /** Batch size of the latency measurement. */
  latencyBatch: number;
  /** Timed repetitions (median is reported). */
  latencyRepeats: number;
}

/** The pruning target of a run: fraction of prunable weights removed, or total compression ratio. */
export type PruneTarget = { kind: "sparsity"; value: number } | { kind: "compression"; value: number };

export type HyperValue = number | string | boolean;

/** A method with its hyperparameters, defaults filled in. */
export interface MethodChoice {
  name: string;
  params: Record<string, HyperValue>;
}

/** Fully normalized configuration of one run: every default filled, nothing implicit. */
export interface RunConfig {
  method: MethodChoice;
  arch: string;
  dataset: string;
  target: PruneTarget;
  seed: number;
  pretrain: TrainConfig;
  finetune: TrainConfig;
  data: DataConfig;
  prunable: PrunablePolicy;
  eval: EvalConfig;
}

/** A published number to show beside reproduced ones (issue: paper reference rows). */
export interface ReferenceRow {
  paper: string;
  source: string;
  dataset: string;
  arch: string;
  method: string;
  target: PruneTarget;
  metrics: Record<string, { value: number; unit: string }>;
  note?: string;
}

/** A parsed, validated grid file. */
export interface Grid {
  name: string;
  description: string;
  file: string;
  methods: MethodChoice[];
  archs: string[];
  datasets: string[];
  targets: PruneTarget[];
  seeds: number[];
  pretrain: TrainConfig;
  finetune: TrainConfig;
  data: DataConfig;
  prunable: PrunablePolicy;
  eval: EvalConfig;
  reference: ReferenceRow[];
}

/** What the grid validator needs to know about the plug-in shelves, injected so grid/ stays free of tfjs. */
export interface HyperParamSpec {
  type: "number" | "integer" | "string" | "boolean";
  default: HyperValue;
  min?: number;
  max?: number;
  choices?: string[];
  description: string;
}
export interface Catalog {
  methods: Record<string, { params: Record<string, HyperParamSpec> }>;
  /** inputShape [h, w, c] of each architecture's expected input, null = any image shape. */
  archs: Record<string, { inputShape: [number, number, number] | null; numClasses: number | null }>;
  /** `splitSizes`: images in the train and test split; absent = unknown, so subsets are not checked against it. */
  datasets: Record<string, { inputShape: [number, number, number]; numClasses: number; splitSizes?: { train: number; test: number } }>;
}

export const PROTOCOL_VERSION = 1;

export interface JobPaths {
  /** Shared dense-model cache (content-addressed by dense key). */
  cacheDir: string;
  /** Where a run writes its pruned weights and masks. */
  artifactsDir: string;
  /** --data-dir, searched first for dataset files. */
  dataDir?: string;
}

/** "dense": make sure the pretrained dense model for `denseKey` is cached. "run": the whole pruning run. */
export interface Job {
  protocol: typeof PROTOCOL_VERSION;
  kind: "dense" | "run";
  key: string;
  denseKey: string;
  config: RunConfig;
  paths: JobPaths;
  /** Requested compute backend ("auto", "wasm", "node", "native", "cpu"). */
  backend: string;
}

export interface BackendRecord {
  name: string;
  tfjsVersion: string;
  threads: number;
}

export interface Artifact {
  kind: string;
  path: string;
  sha256: string;
  bytes: number;
}

export type JobStatus = "done" | "failed" | "diverged";

export interface JobResult {
  protocol: typeof PROTOCOL_VERSION;
  kind: Job["kind"];
  key: string;
  status: JobStatus;
  error: string | null;
  backend: BackendRecord | null;
  metrics: Record<string, number>;
  layers: LayerCount[];
  epochs: EpochRecord[];
  artifacts: Artifact[];
  startedAt: string;
  finishedAt: string;
  host: string;
  pid: number;
}

export interface EpochRecord {
  phase: "pretrain" | "finetune";
  epoch: number;
  loss: number;
  trainAcc: number;
  valAcc: number;
  lr: number;
  seconds: number;
}

export interface LayerCount {
  name: string;
  kind: LayerKind;
  shape: number[];
  /** All parameters of the layer (kernel + bias, or gamma + beta). */
  params: number;
  nonzero: number;
  macs: number;
  macsEffective: number;
  prunable: boolean;
}

export type LayerKind = "conv" | "dense" | "batchnorm";

export interface PlannedRun {
  key: string;
  denseKey: string;
  config: RunConfig;
  methodLabel: string;
  codeVersion: string;
  dataFingerprint: string;
}

export type RunStatus = "pending" | "running" | "done" | "failed" | "diverged" | "interrupted";
