/**
 * DelegatingOps, the base of the wrappers that watch an architecture's run (OutputRecorder, KfacProbes, InputRecorder,
 * FrozenActivations): every operation it does not override reaches `inner` with the same arguments and returns what
 * `inner` returned, and an optional operation (avgPool) is offered exactly when `inner` offers it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DelegatingOps, ShapeOps, type Ops } from "../src/archs/ops.js";

/** Every operation of Ops: ShapeOps implements them all, optional ones included. */
const OPERATIONS = Object.getOwnPropertyNames(ShapeOps.prototype).filter((k) => k !== "constructor" && k !== "pushEmbedding");

/** How many arguments each operation takes in Ops (optional ones included), all of which must reach inner. */
const ARITY: Record<string, number> = {
  conv: 3, depthwiseConv: 3, dense: 3, batchNorm: 3, layerNorm: 2, relu: 1, gelu: 1, maxPool: 3, avgPool: 3,
  globalAvgPool: 1, flatten: 1, add: 2, zeroPadShortcut: 3, toTokens: 1, classToken: 2, positionEmbedding: 2, takeToken: 2,
  attention: 5,
};

/** An inner Ops that logs each call and returns a fresh token, offering only `offered`. */
function loggingOps(offered: readonly string[]) {
  const calls: { operation: string; args: unknown[]; result: object }[] = [];
  const ops = Object.fromEntries(offered.map((operation) => [operation, (...args: unknown[]) => {
    const result = { operation };
    calls.push({ operation, args, result });
    return result;
  }]));
  return { ops: ops as unknown as Ops<unknown>, calls };
}

test("every operation reaches inner with the same arguments and returns inner's value", () => {
  // The base defines each operation itself (none left to a subclass to forget), and nothing else.
  const forwarded = Object.getOwnPropertyNames(DelegatingOps.prototype).filter((k) => k !== "constructor");
  assert.deepEqual([...forwarded].sort(), [...OPERATIONS].sort());
  assert.deepEqual(Object.keys(ARITY).sort(), [...OPERATIONS].sort());
  assert.ok(OPERATIONS.includes("attention") && OPERATIONS.includes("avgPool"), `operations: ${OPERATIONS}`);
  const { ops, calls } = loggingOps(OPERATIONS);
  const wrapper = new DelegatingOps(ops) as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const operation of OPERATIONS) {
    const args = [{ a: operation }, 2, { c: 3 }, 4, { e: 5 }];
    const before = calls.length;
    const y = wrapper[operation](...args);
    assert.equal(calls.length, before + 1, `${operation}: one call to inner`);
    const call = calls[calls.length - 1];
    assert.equal(call.operation, operation);
    assert.equal(call.args.length, ARITY[operation], `${operation}: arguments ${JSON.stringify(call.args)}`);
    assert.ok(call.args.every((a, i) => a === args[i]), `${operation}: the very same arguments, in order`);
    assert.equal(y, call.result, `${operation}: inner's value`);
  }
});

test("avgPool is offered only where inner offers it, overridden or not", () => {
  class Watching extends DelegatingOps<unknown> {
    seen = 0;
    override avgPool?(x: unknown, size: number, stride?: number): unknown { this.seen++; return this.inner.avgPool!(x, size, stride); }
  }
  const without = loggingOps(OPERATIONS.filter((k) => k !== "avgPool")).ops;
  assert.equal(new DelegatingOps(without).avgPool, undefined);
  assert.equal(new Watching(without).avgPool, undefined);
  assert.equal("avgPool" in without, false);

  const { ops, calls } = loggingOps(OPERATIONS);
  const watching = new Watching(ops);
  assert.equal(typeof watching.avgPool, "function");
  const x = {};
  assert.equal(watching.avgPool!(x, 2, 1), calls[0].result);
  assert.deepEqual([watching.seen, calls[0].operation, calls[0].args[0] === x, calls[0].args[1], calls[0].args[2]], [1, "avgPool", true, 2, 1]);
});
