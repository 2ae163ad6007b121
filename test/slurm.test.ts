/**
 * `bench slurm`: the sbatch script it writes (text), the options it refuses (exit 2), and a real single-node Slurm
 * (test/helpers/slurm.ts) running arrays: first one whose tasks only write files (the harness itself), then the
 * script `bench slurm --submit` writes, whose workers drain a tiny grid through Redis for a coordinator.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { shellQuote, slurmScript } from "../src/cli/slurm.js";
import { BENCH, bench, tempDir, writeTinyGrid } from "./helpers/cli.js";
import { redisMissing, startRedis } from "./helpers/redis.js";
import { slurmSkipReason, startSlurm, waitForEmptyQueue, type Slurm } from "./helpers/slurm.js";

function query(db: string, sql: string): unknown[] {
  const d = new Database(db, { readonly: true });
  try {
    return d.prepare(sql).all();
  } finally {
    d.close();
  }
}

const BASE = {
  gridFile: "benchmarks/my grid.yaml", gridName: "my grid", queue: "redis://head:6379/2", array: 4, cpusPerTask: 3, gpusPerTask: 0,
  projectDir: "/opt/prune bench", node: "/usr/bin/node", bench: "/opt/prune bench/bin/bench.js", logDir: "/scratch/logs", exitIdle: 0,
};

describe("bench slurm: the script", () => {
  it("an array of N tasks, each one worker with --jobs = CPUs per task, started from the project folder with the same node and bench", () => {
    const text = slurmScript(BASE);
    const lines = text.trimEnd().split("\n");
    assert.equal(lines[0], "#!/bin/bash");
    const directives = lines.filter((l) => l.startsWith("#SBATCH "));
    assert.deepEqual(directives, [
      "#SBATCH --job-name=prunebench-my_grid",
      "#SBATCH --array=0-3",
      "#SBATCH --ntasks=1",
      "#SBATCH --cpus-per-task=3",
      "#SBATCH --output=/scratch/logs/prunebench-my_grid-%A_%a.log",
    ]);
    // sbatch reads #SBATCH lines only before the first command.
    const firstCommand = lines.findIndex((l) => l !== "" && !l.startsWith("#"));
    assert.ok(lines.every((l, i) => !l.startsWith("#SBATCH ") || i < firstCommand));
    assert.deepEqual(lines.slice(firstCommand), [
      "set -euo pipefail",
      "cd '/opt/prune bench'",
      "exec /usr/bin/node '/opt/prune bench/bin/bench.js' worker --queue redis://head:6379/2 --jobs 3",
    ]);
    assert.match(text, /# {3}bench sweep 'benchmarks\/my grid\.yaml' --queue redis:\/\/head:6379\/2\n/);
  });

  it("GPUs, partition and time limit only when asked for", () => {
    const text = slurmScript({ ...BASE, gpusPerTask: 2, partition: "gpu", time: "1-12:00:00", array: 1 });
    assert.match(text, /^#SBATCH --array=0-0$/m);
    assert.match(text, /^#SBATCH --gpus-per-task=2$/m);
    assert.match(text, /^#SBATCH --partition=gpu$/m);
    assert.match(text, /^#SBATCH --time=1-12:00:00$/m);
    assert.doesNotMatch(slurmScript(BASE), /gpus|partition|--time/);
  });

  it("workers that exit when idle: --exit-idle on the worker's command line only when > 0", () => {
    assert.match(slurmScript({ ...BASE, exitIdle: 600 }), /^exec .* worker --queue redis:\/\/head:6379\/2 --jobs 3 --exit-idle 600$/m);
    assert.doesNotMatch(slurmScript(BASE), /exit-idle/);
  });

  it("shell quoting keeps spaces, quotes and $ literal", () => {
    for (const s of ["plain/path.js", "with space", "it's", "$HOME `x`", ""]) {
      const r = spawnSync("sh", ["-c", `printf %s ${shellQuote(s)}`], { encoding: "utf8" });
      assert.equal(r.stdout, s);
    }
  });
});

describe("bench slurm: the command", () => {
  const dir = tempDir("slurm-cli-");
  const grid = writeTinyGrid(dir);

  it("writes the script (executable) for the grid and says how to submit it and start the coordinator", () => {
    const out = join(dir, "w.sbatch");
    const r = bench(["slurm", grid, "--queue", "redis://10.1.2.3:6379", "--array", "2", "--cpus-per-task", "2", "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*w\.sbatch: 2 worker task\(s\) x 2 run\(s\) at a time/);
    assert.match(r.stderr, /sbatch .*w\.sbatch.*bench sweep .*tiny\.yaml --queue redis:\/\/10\.1\.2\.3:6379/);
    const text = readFileSync(out, "utf8");
    assert.match(text, /^#SBATCH --job-name=prunebench-tiny$/m);
    const root = dirname(dirname(BENCH));
    assert.ok(text.includes(`\ncd ${shellQuote(root)}\n`), "the project folder whose bench runs");
    assert.ok(text.includes(`\nexec ${shellQuote(process.execPath)} ${shellQuote(BENCH)} worker --queue redis://10.1.2.3:6379 --jobs 2 --exit-idle 600\n`), text);
    assert.ok((statSync(out).mode & 0o111) !== 0, "executable");
  });

  it("refuses bad options with exit 2 and a message naming the option", () => {
    const cases: Array<[string[], RegExp]> = [
      [["--queue", "http://x:1", "--array", "2"], /--queue http:\/\/x:1: the scheme must be redis:\/\//],
      [["--queue", "redis://x:70000", "--array", "2"], /--queue redis:\/\/x:70000 is not a Redis address/],
      [["--queue", "redis://x:6379/db", "--array", "2"], /the database after the port must be a number/],
      [["--queue", "redis://x", "--array", "0"], /--array must be a positive integer, got "0"/],
      [["--queue", "redis://x", "--array", "2", "--cpus-per-task", "1.5"], /--cpus-per-task must be a positive integer/],
      [["--queue", "redis://x", "--array", "2", "--gpus-per-task", "-1"], /--gpus-per-task must be a whole number >= 0/],
      [["--queue", "redis://x", "--array", "2", "--partition", "a b"], /--partition "a b" is not a partition name/],
      [["--queue", "redis://x", "--array", "2", "--time", "5h"], /--time "5h" is not a Slurm time/],
      [["--array", "2"], /required option '--queue <url>'/],
    ];
    for (const [args, message] of cases) {
      const r = bench(["slurm", grid, "--out", join(dir, "bad.sbatch"), ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.ok(!existsSync(join(dir, "bad.sbatch")), "nothing written for bad options");
    const missing = bench(["slurm", join(dir, "nope.yaml"), "--queue", "redis://x", "--array", "1", "--out", join(dir, "bad.sbatch")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.yaml/);
    // A file of another kind is not overwritten by the script.
    const notes = join(dir, "notes.md");
    writeFileSync(notes, "# notes\n");
    const clobber = bench(["slurm", grid, "--queue", "redis://x", "--array", "1", "--out", notes]);
    assert.equal(clobber.code, 2);
    assert.match(clobber.stderr, /refusing to overwrite it/);
    assert.equal(readFileSync(notes, "utf8"), "# notes\n");
    // --submit where there is no Slurm.
    const noSlurm = bench(["slurm", grid, "--queue", "redis://x", "--array", "1", "--out", join(dir, "s.sbatch"), "--submit"], { PATH: dir });
    assert.equal(noSlurm.code, 2);
    assert.match(noSlurm.stderr, /sbatch is not on PATH/);
  });
});

const skip = slurmSkipReason();
const noRedis = redisMissing();

describe("a real single-node Slurm", { skip: skip ?? false }, () => {
  let slurm: Slurm;
  before(async () => {
    slurm = await startSlurm();
  });
  after(async () => {
    await slurm?.stop();
  });

  it("runs an array whose tasks each write a file (the harness itself)", async () => {
    const dir = tempDir("slurm-files-");
    const script = join(dir, "files.sbatch");
    writeFileSync(script, `#!/bin/bash
#SBATCH --array=0-3
#SBATCH --cpus-per-task=1
#SBATCH --output=${dir}/out-%A_%a.log
echo "$SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID" > ${dir}/task-$SLURM_ARRAY_TASK_ID.txt
`);
    const r = spawnSync("sbatch", ["--parsable", script], { env: slurm.env, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const id = r.stdout.trim();
    assert.match(id, /^\d+$/);
    const left = await waitForEmptyQueue(slurm, 60_000);
    assert.equal(left, null, `array still queued after 60 s:\n${left}\n${slurm.logs()}`);
    const files = readdirSync(dir).filter((f) => f.startsWith("task-")).sort();
    assert.deepEqual(files, ["task-0.txt", "task-1.txt", "task-2.txt", "task-3.txt"], slurm.logs());
    for (const [i, f] of files.entries()) assert.equal(readFileSync(join(dir, f), "utf8"), `${id} ${i}\n`);
  });

  it("bench slurm --submit: the array's workers drain a tiny grid through Redis for a coordinator; every run done exactly once", { skip: noRedis ?? false }, async () => {
    const dir = tempDir("slurm-queue-");
    const grid = writeTinyGrid(dir);
    const redis = await startRedis();
    let jobId: string | undefined;
    try {
      // What sbatch sees is what the tasks get: our cluster, a cache of the test's own, short queue locks.
      const env = { ...slurm.env, XDG_CACHE_HOME: join(dir, "xdg"), BENCH_QUEUE_LOCK_MS: "3000" };
      const script = join(dir, "tiny.sbatch");
      const submitted = bench(["slurm", grid, "--queue", redis.url, "--array", "2", "--cpus-per-task", "1", "--exit-idle", "20", "--out", script, "--submit"], env);
      assert.equal(submitted.code, 0, submitted.stderr);
      jobId = submitted.stdout.match(/submitted job (\d+)/)?.[1];
      assert.ok(jobId, submitted.stdout);
      assert.match(submitted.stderr, new RegExp(`now start the coordinator: bench sweep .*tiny\\.yaml --queue ${redis.url.replace(/[/.]/g, "\\$&")}; each worker exits once no job has come for 20 s`));

      const db = join(dir, "results.db");
      const coordinator = spawnSync(process.execPath, [BENCH, "sweep", grid, "--queue", redis.url, "--db", db, "--cache-dir", join(dir, "cache-c"), "--plain"],
        { encoding: "utf8", env, timeout: 400_000 });
      const logs = () => readdirSync(dir).filter((f) => f.endsWith(".log")).map((f) => `--- ${f}\n${readFileSync(join(dir, f), "utf8")}`).join("\n");
      assert.equal(coordinator.status, 0, `${coordinator.stdout}${coordinator.stderr}\n${logs()}\n${slurm.logs()}`);
      assert.match(coordinator.stdout, /4 runs planned, 0 already finished, 4 to run through the queue/);
      assert.match(coordinator.stdout, /4 done, 0 failed/);
      const runs = query(db, `SELECT status, count(*) AS n FROM runs GROUP BY status`);
      assert.deepEqual(runs, [{ status: "done", n: 4 }]);

      // With --exit-idle the array ends on its own once the sweep has drained: the nodes go back without scancel.
      const left = await waitForEmptyQueue(slurm, 90_000);
      assert.equal(left, null, `array still running 90 s after the sweep:\n${left}`);
      jobId = undefined;

      // One log per array task, each a worker of this queue; across them every job started exactly once.
      const taskLogs = [0, 1].map((i) => join(dir, `prunebench-tiny-${submitted.stdout.match(/submitted job (\d+)/)![1]}_${i}.log`));
      for (const f of taskLogs) assert.match(readFileSync(f, "utf8"), new RegExp(`1 training process\\(es\\), queue ${redis.url.replace(/[/.]/g, "\\$&")}`), logs());
      for (const f of taskLogs) assert.match(readFileSync(f, "utf8"), /no job for 20 s; exiting/, logs());
      const started = taskLogs.flatMap((f) => [...readFileSync(f, "utf8").matchAll(/job (\S+) started/g)].map((m) => m[1]));
      assert.equal(started.filter((id) => id.startsWith("run-")).length, 4, logs());
      assert.equal(started.filter((id) => id.startsWith("dense-")).length, 1, logs());
      assert.equal(new Set(started).size, started.length, `a job ran twice:\n${logs()}`);
    } finally {
      if (jobId) spawnSync("scancel", [jobId], { env: slurm.env });
      await waitForEmptyQueue(slurm, 60_000);
      await redis.dispose();
    }
  });
});
