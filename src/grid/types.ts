/**
 * The values that flow from a grid file to the runs it expands into.
 * Every stage after parsing sees only these plain, JSON-serializable values.
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

/** A grid or input error, pointing at the place a user must edit. */
export class GridError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${file}${line !== null ? `:${line}` : ""}: ${key ? `${key}: ` : ""}${problem}`);
    this.name = "GridError";
  }
}
