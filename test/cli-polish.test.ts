/**
 * Command-line polish: examples under every --help, the worker command offered (for `--queue`), accuracy in percent in
 * `bench ls`, colour only on a terminal and never with NO_COLOR, `bench table` refusing to average over an axis that
 * varies (exit 2, naming it), and `bench doctor` reporting the cache size and versions.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { colourOn, paint, textTable } from "../src/cli/output.js";
import { bench, tempDir, writeTinyGrid } from "./helpers/cli.js";

/** Command names listed under "Commands:" in the top-level help. */
function commands(help: string): string[] {
  const section = help.slice(help.indexOf("Commands:"));
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]).filter((c) => c !== "help");
}

test("every command's --help ends with an Examples section; worker (a queue consumer since `--queue`) is listed", () => {
  const top = bench(["--help"]);
  assert.equal(top.code, 0, top.stderr);
  const names = commands(top.stdout);
  for (const expected of ["sweep", "validate", "report", "table", "export", "ls", "show", "methods", "archs", "datasets", "doctor"]) {
    assert.ok(names.includes(expected), `${expected} listed: ${names.join(", ")}`);
  }
  assert.ok(names.includes("worker"), "bench worker --queue is for users: listed");
  assert.match(top.stdout, /\nExamples:\n {2}\$ bench /);
  for (const name of names) {
    const r = bench([name, "--help"]);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    const examples = r.stdout.slice(r.stdout.indexOf("\nExamples:\n"));
    assert.ok(r.stdout.includes("\nExamples:\n"), `${name} --help has examples:\n${r.stdout}`);
    assert.match(examples, new RegExp(`\\$ bench ${name}\\b`), `${name}'s examples use ${name}`);
  }
});

test("colour: never with NO_COLOR, forced by FORCE_COLOR, else only on a terminal that is not dumb", () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };
  assert.equal(colourOn(tty, {}), true);
  assert.equal(colourOn(tty, { TERM: "dumb" }), false);
  assert.equal(colourOn(pipe, {}), false);
  assert.equal(colourOn(tty, { NO_COLOR: "1" }), false);
  assert.equal(colourOn(tty, { NO_COLOR: "1", FORCE_COLOR: "1" }), false, "NO_COLOR wins");
  assert.equal(colourOn(tty, { NO_COLOR: "" }), true, "an empty NO_COLOR is unset (no-color.org)");
  assert.equal(colourOn(pipe, { FORCE_COLOR: "1" }), true);
  assert.equal(colourOn(pipe, { FORCE_COLOR: "0" }), false);
  assert.equal(paint(false, "red", "x"), "x");
  assert.equal(paint(true, "red", "x"), "\x1b[31mx\x1b[0m");
  // colour wraps the padded cell, so columns stay aligned
  const t = textTable(["a", "b"], [["done", "1"], ["failed", "2"]], (_r, c, p) => (c === 0 ? paint(true, "red", p) : p));
  assert.equal(t.split("\n")[2], "\x1b[31mdone  \x1b[0m  1");
});

test("on a finished sweep: ls in percent and coloured only when asked; table refuses to average over a varying axis", () => {
  const dir = tempDir();
  const grid = writeTinyGrid(dir);
  const db = join(dir, "r.db");
  const made = bench(["sweep", grid, "--db", db, "--cache-dir", join(dir, "cache"), "--jobs", "1", "--plain"]);
  assert.equal(made.code, 0, made.stdout + made.stderr);

  const json = JSON.parse(bench(["ls", "--db", db, "--json"]).stdout) as Array<{ key: string; metrics: Record<string, number> }>;
  const plain = bench(["ls", "--db", db]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /top1 %\s+dense %/);
  for (const run of json) {
    const line = plain.stdout.split("\n").find((l) => l.startsWith(run.key))!;
    assert.ok(line.includes(` ${(run.metrics.top1_after * 100).toFixed(2)} `), `${line} shows top-1 ${run.metrics.top1_after} in percent`);
  }
  assert.doesNotMatch(plain.stdout, /\x1b\[/, "a pipe gets no colour");
  assert.match(bench(["ls", "--db", db], { FORCE_COLOR: "1" }).stdout, /\x1b\[32mdone/);
  assert.doesNotMatch(bench(["ls", "--db", db], { FORCE_COLOR: "1", NO_COLOR: "1" }).stdout, /\x1b\[/);

  const refused = bench(["table", "--db", db, "--group-by", "arch,method"]);
  assert.equal(refused.code, 2, refused.stdout);
  assert.match(refused.stderr, /^error: --group-by arch,method would average over target, which varies within a row \(sparsity 0\.5, sparsity 0\.9\): add target to --group-by, or pass --average-over target/);
  assert.equal(refused.stdout, "");
  const averaged = bench(["table", "--db", db, "--group-by", "arch,method", "--average-over", "target", "--format", "latex"]);
  assert.equal(averaged.code, 0, averaged.stderr);
  assert.match(averaged.stdout, /One run per row|over 1 seed per row, averaged over target/);
  assert.ok(!averaged.stdout.includes("1 seeds"));
  const typo = bench(["table", "--db", db, "--average-over", "targt", "--group-by", "arch,method"]);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /--average-over: unknown value "targt"; did you mean "target"\?/);
  const pivot = bench(["table", "--db", db, "--pivot", "method", "--format", "latex", "--caption", "Tiny", "--label", "tab:tiny"]);
  assert.equal(pivot.code, 0, pivot.stderr);
  assert.match(pivot.stdout, /\\caption\{Tiny\}\n {2}\\label\{tab:tiny\}/);
  assert.match(pivot.stdout, /Dataset & Arch & \{Sparsity\} & \{dense\} & \{global-magnitude\} & \{random\} \\\\/);
  const caption = bench(["table", "--db", db, "--format", "latex"]);
  assert.match(caption.stdout, /One run per row \(1 seed\)/);
});

test("bench doctor reports the dense-model cache's size and the versions", () => {
  const cache = join(tempDir(), "cache");
  mkdirSync(join(cache, "dense"), { recursive: true });
  writeFileSync(join(cache, "dense", "a.bin"), Buffer.alloc(3000));
  writeFileSync(join(cache, "b.json"), "{}");
  const r = bench(["doctor", "--json", "--cache-dir", cache]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.deepEqual(report.cache, { dir: cache, exists: true, bytes: 3002, files: 2 });
  assert.match(report.versions.code, /^prunebench-\d+\.\d+\.\d+\+r\d+$/);
  assert.equal(report.versions.node, process.version);
  const text = bench(["doctor", "--cache-dir", cache]);
  assert.match(text.stdout, new RegExp(`cache: ${cache.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: 2\\.9 KiB in 2 file\\(s\\)`));
  assert.match(text.stdout, /versions: code prunebench-/);
});
