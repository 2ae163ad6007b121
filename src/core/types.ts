/**
 * The values that cross stages, declared once: what a grid says (RunConfig and its parts), what the coordinator sends
 * a worker and gets back (Job, JobResult), what is stored per run (layer counts, epoch records, status). Every layer
 * imports these from here; this module imports nothing.
 */

export type OptimizerName = "sgd" | "adam";
export type LrScheduleName = "constant" | "step" | "cosine";
/**
 * Weight initialisation of conv and dense layers (BN is always gamma 1, beta 0):
 * torch-default: PyTorch's nn.Linear/nn.Conv2d (kaiming-uniform a=sqrt(5)): weights and biases U(+-1/sqrt(fan_in));
 * he-uniform: U(+-sqrt(6/fan_in)), zero biases; he-normal: N(0, 2/fan_out), zero biases;
 * glorot-uniform: U(+-sqrt(6/(fan_in+fan_out))), zero biases.
 */
export type InitName = "torch-default" | "he-uniform" | "he-normal" | "glorot-uniform";
/** Model selection after fine-tuning: the epoch with the best validation accuracy, or the last epoch. */
export type SelectName = "best-val" | "final";
/** Training-batch augmentation: none, or a pad-4 random crop plus a random horizontal flip (seeded). */
export type AugmentName = "none" | "crop-flip";
/**
 * Input normalisation, per channel on the [0, 1] pixel scale: the dataset's own train statistics, none (x = p/255),
 * or given statistics (ShrinkBench normalises Fashion-MNIST with MNIST's 0.1307 / 0.3081).
 */
export type Normalization = "dataset" | "none" | { mean: number[]; std: number[] };

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
  /** Nesterov momentum (SGD only). */
  nesterov: boolean;
  /** Linear LR warmup from 0 over this many epochs, per step, multiplying the schedule; 0 = none. */
  warmupEpochs: number;
}

/** Fine-tuning: a training phase plus which epoch's weights it keeps. */
export interface FinetuneConfig extends TrainConfig {
  select: SelectName;
}

export interface ModelConfig {
  init: InitName;
}

export interface DataConfig {
  /** Fraction of the training split held out for validation (model selection never looks at test). */
  valFraction: number;
  /** Use only the first N (shuffled, class-balanced) training images; null = all. */
  trainSubset: number | null;
  /** Evaluate on at most N test images; null = all. */
  testSubset: number | null;
  normalize: Normalization;
  /** Applied to training batches only (pretraining and fine-tuning), never to validation, test or scoring batches. */
  augment: AugmentName;
}

/** The grid's data block: `augment: auto` is resolved per dataset when the grid is expanded into runs. */
export interface GridDataConfig extends Omit<DataConfig, "augment"> {
  augment: AugmentName | "auto";
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

/**
 * The pruning target of a run: fraction of prunable weights removed (channel methods: of prunable channels), total
 * compression ratio (channel methods: dense params / the compacted model's), or, for channel methods only, the
 * fraction of the dense model's MACs that the compacted model no longer has.
 */
export type PruneTarget = { kind: "sparsity"; value: number } | { kind: "compression"; value: number } | { kind: "macs-reduction"; value: number };

export type HyperValue = number | string | boolean;

/** A method with its hyperparameters, defaults filled in. */
export interface MethodChoice {
  name: string;
  params: Record<string, HyperValue>;
}

/**
 * A sanity ablation applied to a method's masks right after its last pruning step before training (Frankle et al.
 * 2021; Su et al. 2020): "layer-shuffle" keeps each layer's number of surviving weights and draws their positions
 * uniformly at random inside the layer; "reinit" keeps the mask and re-draws the surviving weights from the
 * initialisation distribution. Both ask whether the masks carry more than per-layer ratios; "none" is the method.
 */
export type AblationName = "none" | "layer-shuffle" | "reinit";
export const ABLATIONS: readonly AblationName[] = ["none", "layer-shuffle", "reinit"];

/** Fully normalized configuration of one run: every default filled, nothing implicit. */
export interface RunConfig {
  method: MethodChoice;
  ablation: AblationName;
  arch: string;
  dataset: string;
  target: PruneTarget;
  seed: number;
  model: ModelConfig;
  pretrain: TrainConfig;
  finetune: FinetuneConfig;
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
  ablations: AblationName[];
  archs: string[];
  /**
   * Architectures imported from files (`archs: [{layers_model: path}]`): name -> absolute path of the model.json. The
   * name carries the files' content hash, so it (not the path) is what run keys hash; the path only locates it.
   */
  archFiles?: Record<string, string>;
  datasets: string[];
  targets: PruneTarget[];
  seeds: number[];
  model: ModelConfig;
  pretrain: TrainConfig;
  finetune: FinetuneConfig;
  data: GridDataConfig;
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
  /**
   * The value is a comma-separated list of the architecture's layer names (e.g. layers to keep whole). Each name must
   * be one of the arch's layers: checked at grid time where the arch's layers are known then, else at run start, so a
   * misspelt name is an error instead of a layer silently left unprotected.
   */
  layerNames?: boolean;
}
export interface Catalog {
  /** `check`: what is wrong with these (filled-in) hyperparameters together, e.g. a schedule that cannot run; null if nothing. */
  /**
   * `scheduleKind`: the kind of the method's schedule with these hyperparameters ("one-shot", "at-init", "gradual",
   * "dynamic", "iterative"), for the checks that depend on when masks change (an ablation needs them fixed).
   */
  methods: Record<string, {
    params: Record<string, HyperParamSpec>;
    check?: (params: Readonly<Record<string, HyperValue>>) => string | null;
    scheduleKind?: (params: Readonly<Record<string, HyperValue>>) => string;
    /** "channel": the method removes whole channels (structured); "weight" or absent: single weights. */
    granularity?: "weight" | "channel";
  }>;
  /** inputShape [h, w, c] of each architecture's expected input, null = any image shape. */
  /** `layerNames`: the names a `layerNames` hyperparameter may list (the layers producing channels); absent = unknown until the run. */
  archs: Record<string, { inputShape: [number, number, number] | null; numClasses: number | null; layerNames?: () => readonly string[] }>;
  /**
   * The architecture name of a tfjs LayersModel file (content-addressed, see src/archs/layers-model-file.ts), or why
   * it cannot be read; absent: the grid accepts no files. Its layers are checked after validation (importGridArchs).
   */
  layersModelName?: (file: string) => { name: string } | { error: string };
  /** `splitSizes`: images in the train and test split; absent = unknown, so subsets are not checked against it. */
  datasets: Record<string, { inputShape: [number, number, number]; numClasses: number; splitSizes?: { train: number; test: number } }>;
}

export const PROTOCOL_VERSION = 1;

export interface JobPaths {
  /** Shared dense-model cache (content-addressed by dense key). */
  cacheDir: string;
  /** Imported architectures' model.json files by architecture name (Grid.archFiles); not part of any key. */
  archFiles?: Record<string, string>;
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
  /**
   * Intra-op threads for this job (absent: the backend's own count). Not part of the run key: the native kernels give
   * the same bits at any count, so the sweep can hand idle cores to the jobs left (src/sweep/threads.ts).
   */
  threads?: number;
  /**
   * What the coordinator planned the job with, so that a worker on another machine can refuse a job its own code or
   * data would compute differently (a queue worker requires it; a forked worker runs the coordinator's own code).
   */
  versions?: JobVersions;
}

export interface JobVersions {
  code: string;
  resultsRevision: number;
  dataFingerprint: string;
}

export interface BackendRecord {
  name: string;
  tfjsVersion: string;
  threads: number;
  /** The device the run trained on: "cpu", or the torch backend's e.g. "cuda:0 NVIDIA H100 80GB HBM3". */
  device?: string;
  /** The GPU (CUDA_VISIBLE_DEVICES id) the worker was bound to (`--gpus`), whose cuda:0 is `device`; absent on CPU. */
  gpu?: string;
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
  /**
   * A schedule with several results (iterative pruning: one per level, trained once) lists them here, in order;
   * the run's own metrics, layers and epochs are those of the last level. Absent for one-result runs. The store
   * writes each level as a child run (see Store.saveResult).
   */
  levels?: LevelResult[];
  /** Per-class top-1 on the test split (dense, before and after fine-tuning); absent for dense jobs and failed runs. */
  classes?: ClassAccuracy[];
}

/** One level of an iterative run: the model after round `level` (1-based) was retrained, measured like any run. */
export interface LevelResult {
  level: number;
  metrics: Record<string, number>;
  layers: LayerCount[];
  epochs: EpochRecord[];
  classes?: ClassAccuracy[];
}

/**
 * Top-1 hits of one true class on the test split, counted in the evaluation pass that gives top1_<phase>: the class's
 * accuracy is correct / count, and Σ correct / Σ count over the classes is top1_<phase>.
 */
export interface ClassAccuracy {
  phase: "dense" | "before" | "after";
  /** The class index (label). */
  label: number;
  /** The dataset's name for it ("" when it has none). */
  name: string;
  correct: number;
  count: number;
}

export interface EpochRecord {
  phase: "pretrain" | "finetune";
  epoch: number;
  loss: number;
  trainAcc: number;
  valAcc: number;
  lr: number;
  seconds: number;
  /**
   * Dynamic dead neuron rate (Liu et al., AP, arXiv 2212.06145): the fraction of (ReLU unit, sample) pairs whose
   * output was exactly 0 over the epoch's training batches, measured during optimisation (train-mode forward passes,
   * augmented batches, the weights as they were at each step). This reading of the paper is unconfirmed: the
   * authors' code does not compute it. A conv layer's units are its output elements (channel × position). NaN when
   * not measured (a network without ReLU, epochs stored before it existed).
   */
  dnr: number;
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

/**
 * conv, depthwise and dense layers own a kernel (and maybe a bias); batchnorm and layernorm own γ and β; embedding a
 * learned token or position table; attention owns no tensor (it is listed for its MACs and heads).
 */
export type LayerKind = "conv" | "depthwise" | "dense" | "batchnorm" | "layernorm" | "embedding" | "attention";

export interface PlannedRun {
  key: string;
  denseKey: string;
  config: RunConfig;
  methodLabel: string;
  codeVersion: string;
  dataFingerprint: string;
}

export type RunStatus = "pending" | "running" | "done" | "failed" | "diverged" | "interrupted";
