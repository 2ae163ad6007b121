import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { BENCH, bench, tempDir, writeTinyGrid } from "./helpers/cli.js";
import { redisMissing, startRedis } from "./helpers/redis.js";

const missing = redisMissing();
// Short locks so that a dead worker's job goes back to the queue within seconds (BullMQ default: 30 s).
const QUEUE_ENV = { BENCH_QUEUE_LOCK_MS: "2000" };
const timing = /(_ms|_seconds|^measured_speedup|^train_img_per_s|^peak_rss_mb)$/;

interface Proc { child: ChildProcess; log: () => string; exited: Promise<number | null> }

function start(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [BENCH, ...args], { env: { ...process.env, ...QUEUE_ENV, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (d) => { log += d; });
  child.stderr!.on("data", (d) => { log += d; });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, log: () => log, exited };
}

async function waitFor(what: string, ok: () => boolean, seconds = 120, logs: () => string = () => ""): Promise<void> {
  const until = Date.now() + seconds * 1000;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n${logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stop(procs: Proc[]): Promise<void> {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
}

function query<T = Record<string, unknown>>(db: string, sql: string): T[] {
  const d = new Database(db, { readonly: true });
  try {
    return d.prepare(sql).all() as T[];
  } finally {
    d.close();
  }
}

/** What must be equal between two sweeps of the same grid: everything but timings and where files went. */
function snapshot(db: string) {
  return {
    runs: query(db, `SELECT key, status, error FROM runs ORDER BY key`),
    metrics: query<{ name: string }>(db, `SELECT run_key, name, value FROM metrics ORDER BY run_key, name`).filter((m) => !timing.test(m.name)),
    epochs: query(db, `SELECT run_key, phase, epoch, loss, train_acc, val_acc, lr FROM epochs ORDER BY run_key, phase, epoch`),
    layers: query(db, `SELECT * FROM layers ORDER BY run_key, idx`),
    artifacts: query(db, `SELECT run_key, kind, sha256, bytes FROM artifacts ORDER BY run_key, kind`),
  };
}

/** "job <id> started" lines per job id, across worker logs: how many times each job was executed. */
function starts(logs: string[]): Map<string, number> {
  const n = new Map<string, number>();
  for (const m of logs.join("\n").matchAll(/job (\S+) started/g)) n.set(m[1], (n.get(m[1]) ?? 0) + 1);
  return n;
}

test("a sweep through Redis: 3 workers, one SIGKILLed mid-run, one started late; every run done once, as a local sweep", { skip: missing ?? false }, async () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir);
  const local = bench(["sweep", grid, "--db", join(dir, "local.db"), "--cache-dir", join(dir, "cache-local"), "--jobs", "2", "--plain"]);
  assert.equal(local.code, 0, local.stdout + local.stderr);

  const redis = await startRedis();
  const procs: Proc[] = [];
  try {
    // Slow epochs: the victim is surely mid-run when it is killed.
    const slow = { BENCH_FAULT_EPOCH_DELAY_MS: "400" };
    const worker = (i: number) => start(["worker", "--queue", redis.url, "--cache-dir", join(dir, `cache-w${i}`)], slow);
    const [w1, w2] = [worker(1), worker(2)];
    procs.push(w1, w2);
    const db = join(dir, "queue.db");
    const coordinator = start(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache-c"), "--queue", redis.url, "--plain"]);
    procs.push(coordinator);
    const all = () => procs.map((p) => p.log()).join("\n---\n");
    // w1 has started a run (not the dense job): kill it, and its training process goes with it.
    await waitFor("worker 1 to start a run", () => /job run-\S+ started/.test(w1.log()), 120, all);
    const victim = w1.log().match(/job (run-\S+) started/)![1];
    w1.child.kill("SIGKILL");
    const w3 = worker(3);
    procs.push(w3);
    const code = await coordinator.exited;
    assert.equal(code, 0, all());
    const out = coordinator.log();
    assert.match(out, /4 runs planned, 0 already finished, 4 to run through the queue/);
    assert.match(out, /4 done, 0 failed/);
    assert.match(out, /runs per worker: /);

    // The victim's job ran again elsewhere; every other job ran once; the dense model was trained once.
    const n = starts([w1.log(), w2.log(), w3.log()]);
    assert.equal(n.get(victim), 2, all());
    for (const [id, count] of n) if (id !== victim) assert.equal(count, 1, `${id} ran ${count} times\n${all()}`);
    assert.equal([...n.keys()].filter((id) => id.startsWith("dense-")).length, 1);

    const runs = query<{ key: string; status: string }>(db, `SELECT key, status FROM runs`);
    assert.equal(runs.length, 4);
    assert.ok(runs.every((r) => r.status === "done"));
    // Artifacts are on the coordinator's machine, under its artifacts folder, as the database says.
    const artifacts = query<{ path: string }>(db, `SELECT path FROM artifacts`);
    assert.equal(artifacts.length, 8);
    assert.ok(artifacts.every((a) => a.path.startsWith(join(dir, "queue-artifacts"))));
    assert.deepEqual(snapshot(db), snapshot(join(dir, "local.db")));
  } finally {
    await stop(procs);
    await redis.dispose();
  }
});
