/**
 * Every metric a run records, with its exact definition. Conventions follow ShrinkBench (Blalock et al. 2020) and
 * most pruning papers; see README "Metrics". Written once here; stores, reports and exports use these names.
 */
export interface MetricDef {
  name: string;
  unit: string;
  /** true = larger is better (used to mark the best value in tables). */
  higherIsBetter: boolean | null;
  definition: string;
  /** Recorded by structured (channel) runs only; every other metric is recorded by every finished run. */
  structuredOnly?: true;
}

const defs: MetricDef[] = [
  { name: "top1_dense", unit: "fraction", higherIsBetter: true, definition: "Top-1 accuracy of the dense pretrained model on the test split." },
  { name: "top5_dense", unit: "fraction", higherIsBetter: true, definition: "Top-5 accuracy of the dense pretrained model on the test split." },
  { name: "loss_dense", unit: "nats", higherIsBetter: false, definition: "Mean cross-entropy of the dense model on the test split." },
  { name: "top1_before", unit: "fraction", higherIsBetter: true, definition: "Top-1 test accuracy right after pruning, before fine-tuning." },
  { name: "top5_before", unit: "fraction", higherIsBetter: true, definition: "Top-5 test accuracy right after pruning, before fine-tuning." },
  { name: "loss_before", unit: "nats", higherIsBetter: false, definition: "Test cross-entropy right after pruning, before fine-tuning." },
  { name: "top1_after", unit: "fraction", higherIsBetter: true, definition: "Top-1 test accuracy of the final (fine-tuned) pruned model; the epoch is chosen on validation only." },
  { name: "top5_after", unit: "fraction", higherIsBetter: true, definition: "Top-5 test accuracy of the final pruned model." },
  { name: "loss_after", unit: "nats", higherIsBetter: false, definition: "Test cross-entropy of the final pruned model." },
  { name: "val_top1_after", unit: "fraction", higherIsBetter: true, definition: "Top-1 accuracy of the final pruned model on the validation split (carved from train)." },
  { name: "params_total", unit: "count", higherIsBetter: null, definition: "All parameters of the dense model (weights, biases, BN gamma/beta; not BN running statistics)." },
  { name: "params_nonzero", unit: "count", higherIsBetter: false, definition: "Nonzero parameters after pruning, counted over the same tensors as params_total." },
  { name: "params_prunable", unit: "count", higherIsBetter: null, definition: "Parameters in the tensors the prunable policy lets a method prune." },
  { name: "compression_ratio", unit: "x", higherIsBetter: true, definition: "params_total / params_nonzero (ShrinkBench's definition)." },
  { name: "sparsity", unit: "fraction", higherIsBetter: null, definition: "Fraction of prunable weights that are zero after pruning." },
  { name: "macs_dense", unit: "MACs", higherIsBetter: null, definition: "Multiply-accumulates of conv and dense layers for one input, dense model (reported as FLOPs (MACs); Han 2015 counts 2x)." },
  { name: "macs_effective", unit: "MACs", higherIsBetter: false, definition: "Sum over layers of layer MACs x that layer's weight density (unstructured pruning)." },
  { name: "theoretical_speedup", unit: "x", higherIsBetter: true, definition: "macs_dense / macs_effective; structured (channel) runs: macs_dense / macs_compacted." },
  { name: "params_compacted", structuredOnly: true, unit: "count", higherIsBetter: false, definition: "Structured runs: parameters of the compacted model (the architecture rebuilt with the kept widths), from its own layer table." },
  { name: "macs_compacted", structuredOnly: true, unit: "MACs", higherIsBetter: false, definition: "Structured runs: MACs of the compacted model for one input, from its own layer table." },
  { name: "channel_sparsity", structuredOnly: true, unit: "fraction", higherIsBetter: null, definition: "Structured runs: fraction of the prunable channels (units of the channel groups offered to the method) removed." },
  { name: "target_achieved", structuredOnly: true, unit: "target", higherIsBetter: null, definition: "Structured runs: the run's target measured on the compacted model (channel sparsity, dense/compacted params, or 1 - compacted/dense MACs); channels are whole, so it can exceed the target." },
  { name: "compacted_max_abs_diff", structuredOnly: true, unit: "logit", higherIsBetter: false, definition: "Structured runs: max |masked − compacted| over the logits of one test batch (the compacted model is the masked one, physically smaller)." },
  { name: "latency_form_compacted", structuredOnly: true, unit: "flag", higherIsBetter: null, definition: "1: latency_pruned_ms and the latency_b1/train metrics were measured on the compacted model (structured runs). Absent: on the masked, dense-shaped model, where dense kernels gain nothing from zeros." },
  { name: "latency_b1_dense_ms", structuredOnly: true, unit: "ms", higherIsBetter: false, definition: "Structured runs: median latency of the dense model at batch 1 (same backend and threads as the compacted one)." },
  { name: "latency_b1_dense_iqr_ms", structuredOnly: true, unit: "ms", higherIsBetter: null, definition: "Interquartile range of the dense model's batch-1 timings." },
  { name: "latency_b1_compacted_ms", structuredOnly: true, unit: "ms", higherIsBetter: false, definition: "Structured runs: median latency of the compacted model at batch 1." },
  { name: "latency_b1_compacted_iqr_ms", structuredOnly: true, unit: "ms", higherIsBetter: null, definition: "Interquartile range of the compacted model's batch-1 timings." },
  { name: "measured_speedup_b1", structuredOnly: true, unit: "x", higherIsBetter: true, definition: "latency_b1_dense_ms / latency_b1_compacted_ms." },
  { name: "latency_b1_batch", structuredOnly: true, unit: "images", higherIsBetter: null, definition: "Batch of the b1 latencies (1)." },
  { name: "latency_train_dense_ms", structuredOnly: true, unit: "ms", higherIsBetter: false, definition: "Structured runs: median inference latency of the dense model at the fine-tuning batch size." },
  { name: "latency_train_dense_iqr_ms", structuredOnly: true, unit: "ms", higherIsBetter: null, definition: "Interquartile range of the dense model's training-batch timings." },
  { name: "latency_train_compacted_ms", structuredOnly: true, unit: "ms", higherIsBetter: false, definition: "Structured runs: median inference latency of the compacted model at the fine-tuning batch size." },
  { name: "latency_train_compacted_iqr_ms", structuredOnly: true, unit: "ms", higherIsBetter: null, definition: "Interquartile range of the compacted model's training-batch timings." },
  { name: "measured_speedup_train", structuredOnly: true, unit: "x", higherIsBetter: true, definition: "latency_train_dense_ms / latency_train_compacted_ms." },
  { name: "latency_train_batch", structuredOnly: true, unit: "images", higherIsBetter: null, definition: "Batch of the train latencies (the fine-tuning batch, at most the test split)." },
  { name: "latency_dense_ms", unit: "ms", higherIsBetter: false, definition: "Median wall time of one inference batch of the dense model (batch and threads recorded). Structured runs: timed in alternation with the compacted model (the train-batch timing when the batches agree); unstructured runs: timed once per dense model (by its dense job, kept beside the cached checkpoint per host, backend and threads), shared by the runs pruned from it." },
  { name: "latency_pruned_ms", unit: "ms", higherIsBetter: false, definition: "Median wall time of one inference batch of the pruned model, same backend, batch and threads (unstructured runs: the masked model on the dense kernels, exactly latency_repeats repetitions after warm-up, without the timing floor of the dense model's measurement)." },
  { name: "measured_speedup", unit: "x", higherIsBetter: true, definition: "latency_dense_ms / latency_pruned_ms." },
  { name: "latency_batch", unit: "images", higherIsBetter: null, definition: "Batch size of the latency measurement." },
  { name: "latency_threads", unit: "threads", higherIsBetter: null, definition: "Compute threads during the latency measurement." },
  { name: "compute_threads", unit: "threads", higherIsBetter: null, definition: "Intra-op threads the run trained, evaluated and timed with: more than 1 when its sweep had idle cores (`bench sweep --threads`); the native backend's results do not depend on it." },
  { name: "pretrain_seconds", unit: "s", higherIsBetter: false, definition: "Wall time of dense pretraining (0 when the cached dense model was reused)." },
  { name: "finetune_seconds", unit: "s", higherIsBetter: false, definition: "Wall time of pruning plus fine-tuning." },
  { name: "train_seconds", unit: "s", higherIsBetter: false, definition: "Wall time spent in training steps of this run (fine-tuning; plus pretraining when this run trained the dense model)." },
  { name: "total_seconds", unit: "s", higherIsBetter: false, definition: "Wall time of the whole run in its worker, loading included." },
  { name: "train_img_per_s", unit: "img/s", higherIsBetter: true, definition: "Training throughput during fine-tuning (images per second, masks included)." },
  { name: "peak_rss_mb", unit: "MiB", higherIsBetter: false, definition: "Peak resident memory of the worker process during the run." },
  { name: "best_epoch", unit: "epoch", higherIsBetter: null, definition: "Fine-tuning epoch whose weights were kept (chosen by validation accuracy)." },
  { name: "train_images", unit: "images", higherIsBetter: false, definition: "Images through this run's own training steps on the way to its result: fine-tuning, retraining, and the sparse training of at-init and dynamic runs (a level of an iterative run: every round up to it; a control level: those plus its own retraining). Not the dense pretraining (dense_pretrain_images), evaluation passes or pruning scores." },
  { name: "train_macs", unit: "MACs", higherIsBetter: false, definition: "Training MACs of the steps counted in train_images: per image, 3 x the forward MACs of the model under its masks at that step (effective MACs: each layer's MACs x its kernel's mask density); forward 1x plus backward ~2x (gradients of activations and of weights), the usual accounting of training compute." },
  { name: "train_step_seconds", unit: "s", higherIsBetter: false, definition: "Wall time of the training steps counted in train_images (each epoch's steps, not its validation pass)." },
  { name: "dense_pretrain_images", unit: "images", higherIsBetter: false, definition: "Images through the dense pretraining this run starts from, attributed to every run that prunes the trained dense model, whoever trained it (0 for runs that start from the initial weights: at-init and dynamic sparse training use it only as a baseline). Never part of train_images." },
  { name: "dense_pretrain_macs", unit: "MACs", higherIsBetter: false, definition: "Training MACs of that dense pretraining (3 x dense MACs per image), attributed like dense_pretrain_images. Total training budget of a run = train_macs + dense_pretrain_macs." },
  { name: "dense_pretrain_seconds", unit: "s", higherIsBetter: false, definition: "Wall time of that dense pretraining's training steps, measured where it was trained and kept with the cached dense model, attributed like dense_pretrain_images (unknown for a dense model cached before prunebench kept it). pretrain_seconds stays this process's share only." },
  { name: "cpu_startup_seconds", unit: "s", higherIsBetter: false, definition: "CPU time (all threads) of the worker's start-up (imports, backend), charged to the first job of each worker process (0 for the others)." },
  { name: "cpu_setup_seconds", unit: "s", higherIsBetter: false, definition: "CPU time of the run outside its other cpu_* phases: data and model set-up, loading the cached dense model, counts and bookkeeping." },
  { name: "cpu_pretrain_seconds", unit: "s", higherIsBetter: false, definition: "CPU time of dense pretraining in this process (0 when the cached dense model was reused)." },
  { name: "cpu_prune_seconds", unit: "s", higherIsBetter: false, definition: "CPU time of pruning steps (scores, masks, regrowth), also those inside training." },
  { name: "cpu_finetune_seconds", unit: "s", higherIsBetter: false, definition: "CPU time of the run's own training (fine-tuning, retraining, sparse training), less pruning steps inside it." },
  { name: "cpu_eval_seconds", unit: "s", higherIsBetter: false, definition: "CPU time of the run's evaluation passes on the test (and validation) split." },
  { name: "cpu_latency_seconds", unit: "s", higherIsBetter: false, definition: "CPU time of the latency measurements." },
  { name: "cpu_save_seconds", unit: "s", higherIsBetter: false, definition: "CPU time of writing the run's artifacts (pruned weights and masks, with their checksums)." },
  { name: "masked_nonzero", unit: "count", higherIsBetter: false, definition: "Validity check: weights that are nonzero where their mask is 0, after fine-tuning (must be 0: masked weights stay exactly zero)." },
];

export const METRICS: ReadonlyMap<string, MetricDef> = new Map(defs.map((d) => [d.name, d]));
export const METRIC_NAMES: readonly string[] = defs.map((d) => d.name);
/** The metrics every finished run records, structured or not. */
export const COMMON_METRIC_NAMES: readonly string[] = defs.filter((d) => !d.structuredOnly).map((d) => d.name);
