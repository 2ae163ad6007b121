/**
 * A redis-server of a test's own: 127.0.0.1, a free port, a temporary folder, append-only persistence fsynced on every
 * write (so that a SIGKILLed server restarts with everything it acknowledged). Tests skip where redis-server is absent.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Why queue tests cannot run here, or null when they can. */
export function redisMissing(): string | null {
  const r = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? null : "redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)";
}

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  /** Stop it: SIGTERM (a clean shutdown) or SIGKILL (a crash). */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Start it again on the same port from the same folder (its append-only file). */
  start(): Promise<void>;
  /** Stop it and remove its folder. */
  dispose(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" });
    let answer = "";
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(500, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => { answer += d.toString(); if (answer.includes("\r\n")) done(answer.startsWith("+PONG")); });
  });
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "prunebench-redis-"));
  const port = await freePort();
  let child: ChildProcess | null = null;
  let log = "";
  const start = async () => {
    child = spawn("redis-server", [
      "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
      "--daemonize", "no", "--protected-mode", "no", "--logfile", "",
    ], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d) => { log += d; });
    child.stderr!.on("data", (d) => { log += d; });
    const until = Date.now() + 10_000;
    while (!(await ping(port))) {
      if (child.exitCode !== null || Date.now() > until) throw new Error(`redis-server did not start on port ${port}:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM") => {
    const c = child as ChildProcess | null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => { c.once("exit", () => resolve()); c.kill(signal); });
    child = null;
  };
  await start();
  return {
    port, url: `redis://127.0.0.1:${port}`, dir, stop, start,
    dispose: async () => { await stop("SIGKILL"); rmSync(dir, { recursive: true, force: true }); },
  };
}
