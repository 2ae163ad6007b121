import * as tf from "@tensorflow/tfjs-core";
import { batchNormTrain } from "../backend/fused-ops.js";
import { sparseApplies, sparseConv2d, sparseMatMul, type SparsePatterns } from "../backend/sparse-ops.js";
import { tensorNames, type ConvOptions, type DenseOptions, type Ops } from "./ops.js";

const BN_EPSILON = 1e-5;
const BN_MOMENTUM = 0.9;

/**
 * Runs an architecture on tfjs tensors, reading parameters by name. In training mode, batch norm normalizes
 * with batch statistics and queues running-statistic updates, which the caller applies after the step
 * (`applyStateUpdates`) so they stay outside the gradient tape.
 */
export class TensorOps implements Ops<tf.Tensor> {
  readonly stateUpdates: Array<[string, tf.Tensor]> = [];
  /**
   * With `countReluZeros`: per ReLU, the number of its outputs that are exactly 0 (device scalars, nothing read back),
   * and how many outputs the ReLUs had in all (known from shapes on the host) — the dynamic dead neuron rate's parts.
   */
  readonly reluZeros: tf.Tensor[] = [];
  reluUnits = 0;

  constructor(
    private readonly params: ReadonlyMap<string, tf.Tensor>,
    private readonly training: boolean,
    private readonly countReluZeros = false,
    /**
     * Where masked kernels' sparsity patterns come from: a kernel whose pattern is sparse enough runs the sparse
     * kernels on a backend that has them (`sparseApplies`), else the dense op, as without patterns.
     */
    private readonly sparse?: SparsePatterns,
  ) {}

  private get(name: string): tf.Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`missing parameter ${name}`);
    return t;
  }

  conv(name: string, x: tf.Tensor, o: ConvOptions): tf.Tensor {
    const stride = o.stride ?? 1;
    let input = x as tf.Tensor4D;
    let pad: "same" | "valid" = "valid";
    if (o.padding === "same") pad = "same";
    else if (typeof o.padding === "number" && o.padding > 0) {
      input = tf.pad(input, [[0, 0], [o.padding, o.padding], [o.padding, o.padding], [0, 0]]);
    }
    const w = this.get(tensorNames.kernel(name)) as tf.Tensor4D;
    const pattern = this.sparse?.pattern(tensorNames.kernel(name));
    let y = sparseApplies(pattern, "conv") ? sparseConv2d(input, w, pattern, stride, pad) : tf.conv2d(input, w, stride, pad);
    if (o.bias ?? true) y = tf.add(y, this.get(tensorNames.bias(name)));
    return y;
  }

  dense(name: string, x: tf.Tensor, o: DenseOptions): tf.Tensor {
    const w = this.get(tensorNames.kernel(name)) as tf.Tensor2D;
    const pattern = this.sparse?.pattern(tensorNames.kernel(name));
    let y = sparseApplies(pattern, "dense") ? sparseMatMul(x as tf.Tensor2D, w, pattern) : tf.matMul(x as tf.Tensor2D, w);
    if (o.bias ?? true) y = tf.add(y, this.get(tensorNames.bias(name)));
    return y;
  }

  batchNorm(name: string, x: tf.Tensor): tf.Tensor {
    const gamma = this.get(tensorNames.gamma(name));
    const beta = this.get(tensorNames.beta(name));
    if (!this.training) {
      return tf.batchNorm(x, this.get(tensorNames.movingMean(name)), this.get(tensorNames.movingVar(name)), beta, gamma, BN_EPSILON);
    }
    const { y, mean, variance } = batchNormTrain(x, gamma, beta, BN_EPSILON);
    this.queueRunningStats(name, x, mean, variance);
    return y;
  }

  /** Queues the running-statistic updates from the batch mean and (biased) variance of x. */
  private queueRunningStats(name: string, x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor): void {
    const n = x.size / x.shape[x.shape.length - 1];
    const movingMean = this.get(tensorNames.movingMean(name));
    const movingVar = this.get(tensorNames.movingVar(name));
    // Running variance uses the unbiased estimate, as PyTorch does.
    this.stateUpdates.push(
      [tensorNames.movingMean(name), tf.keep(tf.add(tf.mul(movingMean, BN_MOMENTUM), tf.mul(mean, 1 - BN_MOMENTUM)))],
      [tensorNames.movingVar(name), tf.keep(tf.add(tf.mul(movingVar, BN_MOMENTUM), tf.mul(variance, (1 - BN_MOMENTUM) * n / Math.max(1, n - 1))))],
    );
  }

  relu(x: tf.Tensor): tf.Tensor {
    const y = tf.relu(x);
    if (this.countReluZeros) {
      this.reluZeros.push(tf.sum(tf.cast(tf.equal(y, 0), "float32")));
      this.reluUnits += y.size;
    }
    return y;
  }

  maxPool(x: tf.Tensor, size: number, stride = size): tf.Tensor {
    return tf.maxPool(x as tf.Tensor4D, size, stride, "valid");
  }

  globalAvgPool(x: tf.Tensor): tf.Tensor { return tf.mean(x, [1, 2]); }

  flatten(x: tf.Tensor): tf.Tensor { return tf.reshape(x, [x.shape[0], -1]); }

  add(a: tf.Tensor, b: tf.Tensor): tf.Tensor { return tf.add(a, b); }
}
