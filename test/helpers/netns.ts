/**
 * Network namespaces as stand-in hosts: each has its own network stack and reaches this machine only over a veth pair,
 * so a worker in one talks to Redis across a (virtual) network, as a worker on another machine would. Needs root and
 * `ip`; where either is missing the tests run the workers on this host's network instead, saying so.
 */
import { spawnSync } from "node:child_process";

export interface NetnsHost {
  name: string;
  /** This machine's address as seen from inside the namespace (bind Redis to it). */
  gatewayIp: string;
  /** The command prefix that runs a program inside the namespace. */
  exec: string[];
  dispose(): void;
}

const ip = (args: string[]) => spawnSync("ip", args, { encoding: "utf8" });

/** Why namespaces cannot be made here, or null. */
export function netnsMissing(): string | null {
  if (process.getuid?.() !== 0) return "not root: workers run on this host's network";
  const probe = `pbq${process.pid % 100000}p`;
  const r = ip(["netns", "add", probe]);
  if (r.error) return `no \`ip\` command (${r.error.message}): workers run on this host's network`;
  if (r.status !== 0) return `ip netns add failed (${(r.stderr ?? "").trim()}): workers run on this host's network`;
  ip(["netns", "del", probe]);
  return null;
}

export function makeNetnsHost(index: number): NetnsHost {
  const tag = `pbq${process.pid % 100000}${index}`;
  const name = `${tag}n`;
  const [outside, inside] = [`${tag}h`, `${tag}i`];
  const subnet = `10.${200 + index}.${process.pid % 250}`;
  const steps: string[][] = [
    ["netns", "add", name],
    ["link", "add", outside, "type", "veth", "peer", "name", inside],
    ["link", "set", inside, "netns", name],
    ["addr", "add", `${subnet}.1/30`, "dev", outside],
    ["link", "set", outside, "up"],
    ["-n", name, "addr", "add", `${subnet}.2/30`, "dev", inside],
    ["-n", name, "link", "set", inside, "up"],
    ["-n", name, "link", "set", "lo", "up"],
  ];
  const dispose = () => {
    ip(["netns", "del", name]);
    ip(["link", "del", outside]);
  };
  for (const step of steps) {
    const r = ip(step);
    if (r.status !== 0) {
      dispose();
      throw new Error(`ip ${step.join(" ")}: ${r.stderr.trim()}`);
    }
  }
  return { name, gatewayIp: `${subnet}.1`, exec: ["ip", "netns", "exec", name], dispose };
}
