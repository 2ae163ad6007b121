/**
 * A real single-node Slurm for tests (Debian's slurm-wlm + munge), started as root without systemd in a temp folder
 * of its own: munged on its own socket, slurmctld and slurmd on ports of their own, one node (this host) with this
 * machine's CPUs. What it needs is in ../shared/GUIDE.md §5. The daemons fork into the background; stop() shuts them
 * down (scontrol shutdown, munged --stop) and removes the folder.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { availableParallelism, hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface Slurm {
  dir: string;
  /** Environment for sbatch/squeue/scontrol (and for `bench slurm --submit`): SLURM_CONF pointing at this cluster. */
  env: NodeJS.ProcessEnv;
  /** The daemons' logs, for a failing test's message. */
  logs(): string;
  stop(): Promise<void>;
}

const DAEMONS = ["slurmctld", "slurmd", "munged", "mungekey", "sbatch", "scontrol", "sinfo"];

/** Why this machine cannot run the Slurm tests, or null when it can. */
export function slurmSkipReason(): string | null {
  if (process.getuid?.() !== 0) return "Slurm test needs root (slurmd runs jobs as their user; this harness runs everything as root without systemd)";
  const missing = DAEMONS.filter((d) => spawnSync("sh", ["-c", `command -v ${d}`]).status !== 0);
  if (missing.length) return `Slurm test needs Debian's slurm-wlm and munge (apt-get install slurm-wlm munge); missing: ${missing.join(", ")}`;
  return null;
}

/** A TCP port nothing listens on now (the kernel's pick), so that parallel test files and a system Slurm do not collide. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export async function startSlurm(options: { cpus?: number } = {}): Promise<Slurm> {
  const dir = mkdtempSync(join(tmpdir(), "prunebench-slurm-"));
  // munged refuses a socket whose folder (and the folders above it) others cannot traverse; mkdtemp makes 0700.
  chmodSync(dir, 0o755);
  for (const sub of ["munge", "state", "spool", "log"]) mkdirSync(join(dir, sub), { mode: 0o755 });
  const socket = join(dir, "munge", "munge.socket");
  const key = join(dir, "munge", "munge.key");
  const conf = join(dir, "slurm.conf");
  const env = { ...process.env, SLURM_CONF: conf };
  const node = hostname();
  const cpus = options.cpus ?? availableParallelism();
  let mungeStarted = false;
  let slurmStarted = false;

  const logs = () => ["munge/munged.log", "log/slurmctld.log", "log/slurmd.log"]
    .map((f) => join(dir, f)).filter(existsSync).map((f) => `--- ${f}\n${readFileSync(f, "utf8").split("\n").slice(-30).join("\n")}`).join("\n");

  const stop = async () => {
    if (slurmStarted) spawnSync("scontrol", ["shutdown"], { env, timeout: 20_000 });
    // slurmctld and slurmd leave after shutdown; wait for their pid files' processes before removing their folder.
    for (const pidFile of ["slurmctld.pid", "slurmd.pid"]) await waitGone(join(dir, pidFile));
    if (mungeStarted) spawnSync("munged", ["--stop", `--socket=${socket}`], { timeout: 20_000 });
    await waitGone(join(dir, "munge", "munged.pid"));
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    execFileSync("mungekey", ["--create", `--keyfile=${key}`], { stdio: "pipe" });
    execFileSync("munged", [`--socket=${socket}`, `--key-file=${key}`, `--pid-file=${join(dir, "munge", "munged.pid")}`,
      `--log-file=${join(dir, "munge", "munged.log")}`, `--seed-file=${join(dir, "munge", "munged.seed")}`], { stdio: "pipe" });
    mungeStarted = true;
    const [ctldPort, dPort] = [await freePort(), await freePort()];
    writeFileSync(conf, [
      "ClusterName=prunebench-test",
      `SlurmctldHost=${node}`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      "AuthType=auth/munge",
      "CredType=cred/munge",
      `AuthInfo=socket=${socket}`,
      "SlurmUser=root",
      "SlurmdUser=root",
      // No cgroups and no systemd here: processes are tracked by parent pid, tasks are not confined.
      "ProctrackType=proctrack/linuxproc",
      "TaskPlugin=task/none",
      "AccountingStorageType=accounting_storage/none",
      "JobAcctGatherType=jobacct_gather/none",
      "JobCompType=jobcomp/none",
      "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_Core",
      "MailProg=/bin/true",
      "ReturnToService=2",
      `StateSaveLocation=${join(dir, "state")}`,
      `SlurmdSpoolDir=${join(dir, "spool")}`,
      `SlurmctldPidFile=${join(dir, "slurmctld.pid")}`,
      `SlurmdPidFile=${join(dir, "slurmd.pid")}`,
      `SlurmctldLogFile=${join(dir, "log", "slurmctld.log")}`,
      `SlurmdLogFile=${join(dir, "log", "slurmd.log")}`,
      `NodeName=${node} CPUs=${cpus} State=UNKNOWN`,
      "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
      "",
    ].join("\n"));
    // -i: start without the state of a previous controller (there is none; this also ignores a half-written one).
    execFileSync("slurmctld", ["-i"], { env, stdio: "pipe" });
    slurmStarted = true;
    execFileSync("slurmd", [], { env, stdio: "pipe" });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const state = spawnSync("sinfo", ["-h", "-o", "%T"], { env, encoding: "utf8" }).stdout?.trim();
      if (state === "idle") break;
      if (Date.now() > deadline) throw new Error(`Slurm node did not become idle in 30 s (sinfo: ${state})\n${logs()}`);
      await sleep(200);
    }
  } catch (e) {
    const message = `${(e as Error).message}\n${logs()}`;
    await stop();
    throw new Error(`starting Slurm failed: ${message}`);
  }
  return { dir, env, logs, stop };
}

/** Wait until the process named by a pid file has exited (at most 20 s). */
async function waitGone(pidFile: string): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 0) return;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
}

/** Wait until no job of this cluster is queued or running (at most `ms`); returns squeue's last lines otherwise. */
export async function waitForEmptyQueue(slurm: Slurm, ms: number): Promise<string | null> {
  const deadline = Date.now() + ms;
  let last = "";
  while (Date.now() < deadline) {
    last = spawnSync("squeue", ["-h"], { env: slurm.env, encoding: "utf8" }).stdout?.trim() ?? "";
    if (last === "") return null;
    await sleep(250);
  }
  return last;
}
