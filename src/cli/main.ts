/** The `bench` command line: declares commands only; each command's code is imported when it runs. */
import { Command, InvalidArgumentError, Option } from "commander";
import { availableParallelism } from "node:os";
import { basename, dirname, join } from "node:path";
import { userCacheDir } from "../core/locations.js";
import { PRUNEBENCH_VERSION } from "../core/version.js";
import { EXIT, reportError, UsageError } from "./errors.js";

// `bench ls | head` closes stdout early: that is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

const program = new Command("bench")
  .description("prunebench: benchmark neural-network pruning methods from a grid file to SQLite results and reports")
  .version(PRUNEBENCH_VERSION)
  .showHelpAfterError()
  // Bad options (--backend bogus, a missing argument, an unknown command) are bad input: exit code 2, as documented.
  .exitOverride((e) => process.exit(e.exitCode === 0 ? EXIT.ok : EXIT.badInput));

const dbOption = () => new Option("--db <file>", "results database (SQLite)").default("results.db").argParser((v: string) => {
  // SQLite opens "" as a temporary database: a sweep would report "done" and keep nothing.
  if (v.trim() === "") throw new InvalidArgumentError("give a file name, e.g. results.db (an empty name would keep nothing)");
  return v;
});
const forceOption = () => new Option("--force", "replace an existing output file even if it is not a previous output of this command");
const jsonOption = () => new Option("--json", "print JSON instead of a table");

// Each worker is a process training a model: beyond a few per CPU they only contend for cores and memory.
const JOBS_PER_CPU = 4;
const MAX_JOBS = JOBS_PER_CPU * Math.max(1, availableParallelism());


function action<A extends unknown[]>(load: () => Promise<{ default: (...args: A) => Promise<number | void> | number | void }>) {
  return async (...args: A) => {
    try {
      const code = await (await load()).default(...args);
      process.exitCode = code ?? EXIT.ok;
    } catch (e) {
      process.exitCode = reportError(e);
    }
  };
}

program.command("sweep")
  .description("run every run of a grid file that is not finished yet; results land in --db")
  .argument("<grid>", "grid file (benchmarks/*.yaml)")
  .addOption(dbOption())
  .option("-j, --jobs <n>", `worker processes (at most ${MAX_JOBS}: ${JOBS_PER_CPU} per CPU)`, String(Math.max(1, availableParallelism())))
  .addOption(new Option("--backend <name>", "compute backend").choices(["auto", "node", "native", "wasm", "cpu", "torch"]).default(process.env.BENCH_BACKEND ?? "auto"))
  .option("--data-dir <dir>", "folder searched first for dataset files (also BENCH_DATA_DIR)", process.env.BENCH_DATA_DIR)
  .option("--cache-dir <dir>", "shared cache of dense pretrained models", userCacheDir())
  .option("--artifacts-dir <dir>", "where pruned weights and masks are saved (default: <db>-artifacts beside the database)")
  .option("--dry-run", "print the plan and exit")
  .option("--max-runs <n>", "refuse grids that expand to more runs than this, unless --yes", "1000")
  .option("-y, --yes", "run grids larger than --max-runs")
  .option("--run-timeout <seconds>", "kill a run that takes longer (0 = no limit)", "0")
  .option("--worker-max-rss <MiB>", "replace a worker whose memory exceeds this after a run (0 = never)", "8192")
  .option("--plain", "plain progress lines even on a terminal")
  .option("--queue <redis-url>", "send runs to `bench worker --queue` processes on any machine through Redis: redis://host:port[/db]")
  .option("--threads <auto|n>", "intra-op threads per run (native backend): auto gives idle cores to the runs left when fewer runs than workers remain (for a machine nobody else uses: 2 threads on busy cores are slower than 1); results do not change", "1")
  .option("--gpus <ids>", "train on these GPUs (--backend torch): indices or UUIDs as nvidia-smi lists them, e.g. 0,1, or all; one worker per GPU and --jobs-per-gpu")
  .option("--jobs-per-gpu <k>", "workers sharing each GPU (with --gpus; default 1; small models leave a big GPU mostly idle)")
  .action(action(async () => ({
    default: async (grid: string, o: any, cmd: Command) => {
      const { runSweep } = await import("../sweep/coordinator.js");
      const { parseThreads } = await import("../sweep/threads.js");
      const threads = parseThreads(o.threads);
      if (threads instanceof Error) badOption(threads.message);
      if (o.queue && o.gpus !== undefined) badOption("--gpus binds local workers; with --queue the workers are `bench worker --queue … --gpus …` processes: give it to them");
      const gpus = await gpuPlan(o, cmd.getOptionValueSource("jobs") === "cli" ? jobCount(o.jobs) : undefined, o.backend);
      const s = await runSweep({
        gridFile: grid, dbPath: o.db, jobs: jobCount(o.jobs), backend: o.backend, dataDir: o.dataDir, cacheDir: o.cacheDir,
        artifactsDir: o.artifactsDir ?? join(dirname(o.db), `${basename(o.db).replace(/\.[^.]+$/, "")}-artifacts`),
        dryRun: o.dryRun, maxRuns: positiveInt(o.maxRuns, "--max-runs"), yes: o.yes, runTimeoutSec: nonNegativeNumber(o.runTimeout, "--run-timeout", "seconds"), plain: o.plain,
        maxWorkerRssMb: nonNegativeNumber(o.workerMaxRss, "--worker-max-rss", "MiB"), threads,
        ...(o.queue ? { queue: o.queue } : {}), ...(gpus ? { gpus } : {}),
      });
      if (s.diskFull) return EXIT.diskFull;
      if (s.stopped || s.interrupted > 0) return EXIT.interrupted;
      return s.failed + s.diverged > 0 ? EXIT.runsFailed : EXIT.ok;
    },
  })));

program.command("validate")
  .description("check a grid file and print how many runs it expands to; say where to put dataset files not on this machine")
  .argument("<grid>", "grid file")
  .option("--data-dir <dir>", "folder searched first for dataset files (also BENCH_DATA_DIR)", process.env.BENCH_DATA_DIR)
  .action(action(() => import("./validate.js")));

program.command("report")
  .description("write a self-contained HTML report (works offline) from a results database")
  .addOption(dbOption())
  .option("--compare <db>", "a second database to compare with, run group by run group")
  .option("--compare-sweep <id>", "compare with this sweep (of --compare, or of --db itself)")
  .option("--sweep <id>", "only this sweep's runs")
  .option("-o, --out <file>", "output HTML file", "report.html")
  .addOption(forceOption())
  .option("--title <text>", "page title")
  .action(action(() => import("./report.js")));

program.command("plot")
  .description("write one report chart as SVG, PNG or PDF for a paper (offline; PNG/PDF are drawn by Chromium)")
  .argument("<chart>", "tradeoff-compression, tradeoff-speedup, tradeoff-measured, drop, layers, finetune or speedup (those the data has)")
  .addOption(dbOption())
  .addOption(new Option("-f, --format <format>", "file format").choices(["svg", "png", "pdf"]).default("svg"))
  .option("-o, --out <file>", "output file (default <chart>.<format>)")
  .addOption(forceOption())
  .option("--sweep <id>", "only this sweep's runs")
  .option("--dataset <name>", "only this dataset (as the report's filter bar)")
  .option("--arch <name>", "only this architecture")
  .option("--method <label>", "only this method label")
  .option("--target <label>", 'only this target, e.g. "sparsity 0.9"')
  .option("--seed <n>", "only this seed's runs (default: mean over seeds)")
  .option("--scale <n>", "PNG pixels per chart pixel", "2")
  .action(action(() => import("./plot.js")));

program.command("table")
  .description("print a results table (mean ± std over seeds, a dense row and Δ vs dense per block) for a paper")
  .addOption(dbOption())
  .addOption(new Option("-f, --format <format>", "table format").choices(["markdown", "latex", "csv", "json"]).default("markdown"))
  .option("--group-by <keys>", "comma-separated: dataset,arch,method,target", "dataset,arch,method,target")
  .option("--metrics <names>", `comma-separated metric names, or ${"delta_top1"} (default: top1_after,compression_ratio,theoretical_speedup; with --pivot: top1_after)`)
  .option("--pivot <dim>", "method: targets as rows, one column per method (markdown, latex)")
  .option("--average-over <keys>", "dimensions not in --group-by that may vary within a row and are averaged over on purpose")
  .option("--no-dense", "leave out the dense row and the Δ top-1 column")
  .option("--caption <text>", "table caption (LaTeX; markdown prints a pandoc 'Table:' line)")
  .option("--label <label>", "LaTeX label (default tab:prunebench)")
  .option("--sweep <id>", "only this sweep's runs")
  .option("-o, --out <file>", "write to a file instead of stdout")
  .addOption(forceOption())
  .action(action(() => import("./table.js")));

program.command("reproduce")
  .description("grade published tables (benchmarks/published/) cell by cell against the database: reproduced / outside tolerance (by how much) / not run / dataset absent")
  .argument("[table]", "table id (without one and without --all: list the catalogue)")
  .option("--all", "every table of the catalogue")
  .addOption(dbOption())
  .addOption(new Option("-f, --format <format>", "output format").choices(["text", "markdown", "latex", "json"]).default("text"))
  .option("--sweep <id>", "only this sweep's runs")
  .option("-o, --out <file>", "write to a file instead of stdout")
  .addOption(forceOption())
  .action(action(() => import("./reproduce.js")));

program.command("compare")
  .description("compare two methods at each target, paired by seed and dense model: mean difference, 95% CI, test, verdict (tie unless significant), seeds needed")
  .argument("<methodA>", "method label (or name, when it has one label) as in `bench ls`")
  .argument("<methodB>", "the other method")
  .addOption(dbOption())
  .option("--at <target>", "only this target: 16x (compression), 0.9 (sparsity), macs-reduction 0.5")
  .option("--arch <name>", "only this architecture")
  .option("--dataset <name>", "only this dataset")
  .option("--sweep <id>", "only this sweep's runs")
  .addOption(jsonOption())
  .action(action(() => import("./compare.js")));

program.command("export")
  .description("export raw rows: runs (one column per metric), layers or epochs")
  .addOption(dbOption())
  .addOption(new Option("-f, --format <format>", "output format").choices(["csv", "json", "jsonl"]).default("csv"))
  .addOption(new Option("--what <rows>", "which rows").choices(["runs", "layers", "epochs"]).default("runs"))
  .option("--sweep <id>", "only this sweep's runs")
  .option("-o, --out <file>", "write to a file instead of stdout")
  .addOption(forceOption())
  .action(action(() => import("./export.js")));

program.command("export-model")
  .description("write one run's pruned model as a tfjs LayersModel (model.json + weights.bin; structured runs compacted) with its masks, pruning plan and metadata")
  .argument("<run>", "run key or unique key prefix (see `bench ls`)")
  .addOption(dbOption())
  .requiredOption("-o, --out <dir>", "output folder (created if missing; its parent must exist)")
  .addOption(new Option("--force", "write into a folder that holds other files (the export's own files are replaced, nothing else; never a database)"))
  .option("--data-dir <dir>", "folder searched first for dataset files, to record the input normalization (also BENCH_DATA_DIR)", process.env.BENCH_DATA_DIR)
  .option("--layers-model <model.json>", "for a run on an imported architecture: the model.json it was imported from (the same files)")
  .action(action(() => import("./export-model.js")));

program.command("latency")
  .description("time finished structured runs again (dense vs compacted, batch 1 and the fine-tuning batch) on this machine now, without training")
  .addOption(dbOption())
  .option("--run <keys...>", "only these runs (keys or prefixes)")
  .option("--arch <name>", "only this architecture")
  .option("--method <name>", "only this method (name or label)")
  .option("--repeats <n>", "alternating repetitions per batch size, at least (default 20; more for fast batches)")
  .addOption(new Option("--backend <name>", "compute backend").choices(["auto", "node", "native", "wasm", "cpu", "torch"]).default(process.env.BENCH_BACKEND ?? "auto"))
  .addOption(jsonOption())
  .action(action(() => import("./latency.js")));

program.command("ls")
  .description("list runs with their status and headline metrics")
  .addOption(dbOption())
  .option("--status <status>", "only runs with this status (pending, running, done, failed, diverged, interrupted)")
  .option("--sweep <id>", "only this sweep's runs")
  .addOption(jsonOption())
  .action(action(() => import("./ls.js")));

program.command("show")
  .description("everything recorded about one run (key or unique key prefix)")
  .argument("<run>", "run key or prefix")
  .addOption(dbOption())
  .addOption(jsonOption())
  .action(action(() => import("./show.js")));

program.command("methods")
  .description("list pruning methods with their paper and hyperparameters")
  .addOption(jsonOption())
  .action(action(() => import("./methods.js")));

program.command("archs")
  .description("list architectures with params and MACs per dataset input shape")
  .option("--layers-model <model.json>", "list a tfjs LayersModel instead, as a grid's archs: [{layers_model: …}] imports it")
  .addOption(jsonOption())
  .action(action(() => import("./archs.js")));

program.command("datasets")
  .description("list datasets and where their files are looked up")
  .addOption(jsonOption())
  .action(action(() => import("./datasets.js")));

program.command("doctor")
  .description("which compute backend sweeps run on and why (with how to get the native one), and which datasets are present")
  .option("--expect <backend>", "exit 1 unless --backend auto picks this backend (node, native, wasm or cpu): for CI")
  .option("--cache-dir <dir>", "the dense-model cache to measure (as bench sweep --cache-dir)", userCacheDir())
  .addOption(jsonOption())
  .action(action(() => import("./doctor.js")));

program.command("merge")
  .description("merge results databases of sweeps run apart into one (matched by run key; differing results are reported, never silently overwritten)")
  .argument("<inputs...>", "results databases to merge (read only)")
  .requiredOption("--into <file>", "the merged database: a new file, or an existing results database to add to (never one of the inputs)")
  .addOption(new Option("--on-conflict <policy>", "a key finished with different results on two sides: fail (write nothing, exit 4), first (keep the run merged first), last (take the later input's)")
    .choices(["fail", "first", "last"]).default("fail"))
  .addOption(jsonOption())
  .action(action(() => import("./merge.js")));

program.command("slurm")
  .description("write (and with --submit, submit) a Slurm array job whose tasks each start a queue worker for a sweep run with --queue")
  .argument("<grid>", "grid file the workers will serve (checked now)")
  .requiredOption("--queue <url>", "the sweep's Redis queue, as the nodes reach it: redis://host:port[/db]")
  .requiredOption("--array <n>", "array tasks: one worker each")
  .option("--cpus-per-task <c>", "CPUs per task; the worker runs this many runs at a time (--jobs)", "1")
  .option("--gpus-per-task <k>", "GPUs per task (0: none asked for); the worker binds each training process to one of them", "0")
  .option("--jobs-per-gpu <k>", "with --gpus-per-task: training processes sharing each GPU (default: CPUs per task / GPUs per task, at least 1)")
  .option("--partition <name>", "Slurm partition")
  .option("--time <limit>", "time limit per task, e.g. 12:00:00 or 2-00:00:00")
  .option("--exit-idle <seconds>", "each worker exits once no job has come for this long, giving its node back (0 = serve until scancel)", "600")
  .option("--out <file>", "script to write (default <grid name>.sbatch)")
  .addOption(forceOption())
  .option("--submit", "run sbatch on the script and print the job id")
  .action(action(() => import("./slurm.js")));

program.command("worker")
  .description("run sweeps' jobs: from a Redis queue (--queue, for `bench sweep --queue`), else JSON-lines jobs on stdin, results on stdout")
  .option("--queue <redis-url>", "take jobs from this Redis queue: redis://host:port[/db]")
  .option("-j, --jobs <n>", "training processes (with --queue)", "1")
  .option("--cache-dir <dir>", "this machine's dense-model cache (with --queue)", userCacheDir())
  .option("--data-dir <dir>", "folder searched first for dataset files (also BENCH_DATA_DIR)", process.env.BENCH_DATA_DIR)
  .option("--exit-idle <seconds>", "exit once no job has come for this long (with --queue; 0 = serve until stopped)", "0")
  .option("--gpus <ids>", "with --queue: bind each training process to one of these GPUs (0,1 or UUIDs; all = CUDA_VISIBLE_DEVICES's list, as Slurm sets it)")
  .option("--jobs-per-gpu <k>", "with --gpus: training processes sharing each GPU (default 1)")
  .action(async (o: any, cmd: Command) => {
    if (!o.queue) {
      if (o.gpus !== undefined || o.jobsPerGpu !== undefined) badOption("--gpus and --jobs-per-gpu need --queue (a stdin worker is one process; start it with CUDA_VISIBLE_DEVICES=<id> PRUNEBENCH_TORCH_DEVICE=cuda:0)");
      await import("../sweep/worker.js");
      return;
    }
    const jobs = jobCount(o.jobs);
    try {
      const idle = Number(o.exitIdle);
      if (!/^\s*\d+(\.\d+)?\s*$/.test(o.exitIdle)) throw new UsageError(`--exit-idle must be a number of seconds >= 0, got "${o.exitIdle}"`);
      // The jobs name their backend; a GPU worker takes the coordinator's word that it is torch.
      const gpus = await gpuPlan(o, cmd.getOptionValueSource("jobs") === "cli" ? jobs : undefined, undefined);
      const { runQueueWorker } = await import("../sweep/queue-worker.js");
      await runQueueWorker({
        url: o.queue, jobs: gpus?.slots.length ?? jobs, cacheDir: o.cacheDir, idleExitMs: idle * 1000, ...(o.dataDir ? { dataDir: o.dataDir } : {}), ...(gpus ? { gpus } : {}),
      });
    } catch (e) {
      process.exitCode = reportError(e);
    }
  });

// Examples under every command's --help: the quickest way to learn an option is to see it used.
const EXAMPLES: Record<string, string[]> = {
  sweep: ["bench sweep benchmarks/quickstart.yaml --db results.db", "bench sweep grid.yaml --jobs 4 --backend native", "bench sweep grid.yaml --dry-run",
    "bench sweep grid.yaml --backend torch --gpus 0,1 --jobs-per-gpu 4"],
  validate: ["bench validate benchmarks/quickstart.yaml"],
  report: ["bench report --db results.db -o report.html", "bench report --db new.db --compare old.db -o diff.html"],
  table: [
    "bench table --db results.db --format latex --caption \"Fashion-MNIST, LeNet-300-100\" --label tab:fmnist",
    "bench table --db results.db --pivot method --format latex",
    "bench table --db results.db --group-by arch,method --average-over target",
    "bench table --db results.db --metrics top1_after,delta_top1,params_nonzero --no-dense",
  ],
  reproduce: ["bench reproduce", "bench reproduce shrinkbench-fmnist --db results.db", "bench reproduce --all --db results.db --format latex -o grades.tex"],
  latency: ["bench latency --db results.db", "bench latency --db results.db --arch resnet20 --json"],
  compare: ["bench compare global-magnitude random --db results.db", "bench compare global-magnitude layer-magnitude --at 16x --arch mlp --json"],
  plot: ["bench plot tradeoff-compression --db results.db --dataset mnist --format pdf -o fig2.pdf", "bench plot drop --db results.db --method global_magnitude --format png --scale 3"],
  export: ["bench export --db results.db --format csv -o runs.csv", "bench export --db results.db --what epochs --format jsonl"],
  "export-model": ["bench export-model 3f2a --db results.db -o model/"],
  ls: ["bench ls --db results.db", "bench ls --db results.db --status failed", "bench ls --db results.db --json"],
  show: ["bench show 3f2a --db results.db", "bench show 3f2a --db results.db --json"],
  methods: ["bench methods", "bench methods --json"],
  archs: ["bench archs", "bench archs --json"],
  datasets: ["bench datasets", "bench datasets --json"],
  doctor: ["bench doctor", "bench doctor --json", "bench doctor --expect native"],
  worker: ["bench worker --queue redis://queue-host:6379 --jobs 2", "bench worker --queue redis://queue-host:6379 --gpus 0,1 --jobs-per-gpu 2", "bench worker < jobs.jsonl"],
  slurm: [
    "bench slurm grid.yaml --queue redis://10.0.0.5:6379 --array 16 --cpus-per-task 4 --time 1-00:00:00 --submit",
    "bench slurm grid.yaml --queue redis://head:6379/1 --array 4 --gpus-per-task 1 --partition gpu --out gpu.sbatch",
  ],
  merge: ["bench merge lab.db cluster.db --into all.db", "bench merge a.db b.db --into all.db --on-conflict last"],
};
for (const c of program.commands) {
  const lines = EXAMPLES[c.name()];
  if (lines) c.addHelpText("after", `\nExamples:\n${lines.map((l) => `  $ ${l}`).join("\n")}\n`);
}
program.addHelpText("after", "\nExamples:\n  $ bench sweep benchmarks/quickstart.yaml\n  $ bench report -o report.html\n  $ bench table --format latex\n  $ bench <command> --help\n");

function badOption(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(EXIT.badInput);
}

/** Digits only: "1e3", "0x10" or "1.0" are not what anyone means by a count. */
function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) badOption(`${flag} must be a positive integer, got "${value}"`);
  return n;
}

/**
 * `--gpus` / `--jobs-per-gpu` checked and turned into worker slots (src/sweep/devices.ts), or undefined without --gpus.
 * `backend` undefined: not known here (a queue worker); "auto" is resolved to what it picks on this machine.
 */
async function gpuPlan(o: { gpus?: string; jobsPerGpu?: string }, jobs: number | undefined, backend: string | undefined) {
  if (o.gpus === undefined) {
    if (o.jobsPerGpu !== undefined) badOption("--jobs-per-gpu needs --gpus (which GPUs the workers share), e.g. --gpus 0 --jobs-per-gpu 4");
    return undefined;
  }
  const { planGpus } = await import("../sweep/devices.js");
  const resolvedBackend = backend === "auto" ? (await (await import("../backend/index.js")).initBackend("auto")).name : undefined;
  const plan = await planGpus({ gpus: o.gpus, jobsPerGpu: o.jobsPerGpu, jobs, backend, resolvedBackend }, process.env);
  if (backend !== undefined) await (await import("../sweep/devices.js")).checkTorchSeesGpus(plan.gpus);
  return plan;
}

function jobCount(value: string): number {
  const n = positiveInt(value, "--jobs");
  if (n > MAX_JOBS) {
    badOption(`--jobs ${value} is more than ${MAX_JOBS} (${JOBS_PER_CPU} per CPU, ${availableParallelism()} CPUs here): each worker is a process training a model; use at most ${MAX_JOBS}`);
  }
  return n;
}

function nonNegativeNumber(value: string, flag: string, unit: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) badOption(`${flag} must be a number of ${unit} >= 0 (0 = no limit), got "${value}"`);
  return n;
}

await program.parseAsync(process.argv);
