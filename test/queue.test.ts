import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { BENCH, bench, tempDir, writeTinyGrid } from "./helpers/cli.js";
import { redisMissing, startRedis } from "./helpers/redis.js";
import { type Job, PROTOCOL_VERSION } from "../src/core/types.js";
import { CODE_VERSION, RESULTS_REVISION } from "../src/core/version.js";
import { planSweep } from "../src/sweep/coordinator.js";
import { QueueTransport } from "../src/sweep/queue.js";

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

/** Run a command to its end without blocking this process (whose event loop reads the workers' logs meanwhile). */
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string }> {
  const p = start(args, env);
  const code = await p.exited;
  await new Promise((r) => setImmediate(r));
  return { code, stdout: p.log() };
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

test("Redis restarted under a sweep, then the coordinator SIGKILLed: the same command reattaches and collects, running nothing again", { skip: missing ?? false }, async () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir);
  const redis = await startRedis();
  const procs: Proc[] = [];
  try {
    const w = start(["worker", "--queue", redis.url, "--cache-dir", join(dir, "cache-w")], { BENCH_FAULT_EPOCH_DELAY_MS: "300" });
    procs.push(w);
    const db = join(dir, "queue.db");
    const args = ["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache-c"), "--queue", redis.url, "--plain"];
    const c1 = start(args);
    procs.push(c1);
    const all = () => procs.map((p) => p.log()).join("\n---\n");
    const doneLines = (log: string) => log.match(/\] done /g)?.length ?? 0;
    await waitFor("the first result", () => doneLines(c1.log()) >= 1, 120, all);
    // A crash of Redis: everything it acknowledged is in its append-only file, and clients reconnect.
    await redis.stop("SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    await redis.start();
    await waitFor("a result after the restart", () => doneLines(c1.log()) >= 2, 120, all);
    c1.child.kill("SIGKILL");
    await c1.exited;
    // The worker goes on with what was queued: the dense job and 4 runs.
    await waitFor("the worker to finish the queue", () => (w.log().match(/job \S+ done/g)?.length ?? 0) >= 5, 120, all);
    const before = starts([w.log()]);

    const again = await run(args);
    assert.equal(again.code, 0, again.stdout + all());
    // At least the two seen before the kill were written; the rest are collected now.
    const [, finished, todo] = again.stdout.match(/4 runs planned, (\d) already finished, (\d) to run/)!.map(Number);
    assert.ok(finished >= 2 && finished + todo === 4, again.stdout);
    assert.match(again.stdout, new RegExp(`${todo} done, 0 failed`));
    // Collected, not run again.
    assert.deepEqual(starts([w.log()]), before);
    assert.ok([...before.values()].every((n) => n === 1), all());
    const runs = query<{ status: string }>(db, `SELECT status FROM runs`);
    assert.deepEqual(runs.map((r) => r.status), ["done", "done", "done", "done"]);
    assert.equal(query(db, `SELECT * FROM artifacts`).length, 8);
  } finally {
    await stop(procs);
    await redis.dispose();
  }
});

test("queue workers refuse jobs planned with other code or data (failed at once, with the reason), and a run failing every try is recorded failed", { skip: missing ?? false }, async () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir);
  const { planned } = await planSweep({ gridFile: grid });
  const victim = planned[1];
  const redis = await startRedis();
  const procs: Proc[] = [];
  const env = { BENCH_FAULT_THROW_RUN: victim.key, BENCH_QUEUE_ATTEMPTS: "2" };
  try {
    const w = start(["worker", "--queue", redis.url, "--cache-dir", join(dir, "cache-w")], env);
    procs.push(w);
    const all = () => procs.map((p) => p.log()).join("\n---\n");

    const transport = await QueueTransport.connect(redis.url, join(dir, "artifacts"));
    try {
      const p = planned[0];
      const job = (versions: Job["versions"], key: string): Job => ({
        protocol: PROTOCOL_VERSION, kind: "dense", key, denseKey: p.denseKey, config: p.config, backend: "auto", paths: { cacheDir: "", artifactsDir: "" }, ...(versions ? { versions } : {}),
      });
      const oldCode = await transport.run(job({ code: "prunebench-0.0.1+r1", resultsRevision: 1, dataFingerprint: p.dataFingerprint }, "old-code"));
      assert.equal(oldCode.status, "failed");
      assert.match(oldCode.error!, /refused this job: it was planned with code prunebench-0\.0\.1\+r1 \(results revision 1\), this worker runs /);
      const otherData = await transport.run(job({ code: CODE_VERSION, resultsRevision: RESULTS_REVISION, dataFingerprint: "0123abcd" }, "other-data"));
      assert.match(otherData.error!, /refused this job: its dataset fashion-mnist-mini has fingerprint 0123abcd, the copy on this machine has /);
      const unversioned = await transport.run(job(undefined, "unversioned"));
      assert.match(unversioned.error!, /names no code version/);
      // Refused once each, never tried again.
      const n = starts([w.log()]);
      for (const id of ["dense-old-code", "dense-other-data", "dense-unversioned"]) assert.equal(n.get(id), 1, all());
    } finally {
      await transport.close();
    }

    const db = join(dir, "queue.db");
    const r = await run(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache-c"), "--queue", redis.url, "--plain"], env);
    assert.equal(r.code, 3, r.stdout + all());
    assert.match(r.stdout, /3 done, 1 failed/);
    const [failed] = query<{ key: string; status: string; error: string }>(db, `SELECT key, status, error FROM runs WHERE status != 'done'`);
    assert.equal(failed.key, victim.key);
    assert.equal(failed.status, "failed");
    assert.match(failed.error, /injected fault \(BENCH_FAULT_THROW_RUN\)[\s\S]*\(after 2 tries\)/);
    assert.equal(starts([w.log()]).get(`run-${victim.key}`), 2);
    // Recorded, so the queue forgot it: the next sweep tries it again instead of collecting the old failure.
    const again = await run(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache-c"), "--queue", redis.url, "--plain"], env);
    assert.equal(again.code, 3);
    assert.match(again.stdout, /3 already finished, 1 to run/);
    assert.equal(starts([w.log()]).get(`run-${victim.key}`), 4);
  } finally {
    await stop(procs);
    await redis.dispose();
  }
});
