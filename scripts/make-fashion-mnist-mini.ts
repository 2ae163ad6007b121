/**
 * Regenerates datasets/data/fashion-mnist-mini/ (the embedded default dataset) from the real Fashion-MNIST files,
 * with identical contents: the selection is a fixed-seed shuffle. The files are gzip-compressed with Node's zlib; the
 * dataset's fingerprint (part of every run key) is taken over the decompressed IDX contents, which --check compares.
 *
 *   node dist/scripts/make-fashion-mnist-mini.js [--data-dir DIR] [--out DIR] [--check]
 *
 * The real files are found like any dataset (--data-dir, BENCH_DATA_DIR, the cache, /usr/share/datasets/fashion-mnist,
 * else downloaded) and must be the genuine ones (their fingerprint is checked). --check compares instead of writing
 * and exits 1 if the committed files differ.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { contentFingerprint } from "../datasets/common.js";
import { FASHION_MNIST_FINGERPRINT, loadFashionMnist } from "../datasets/fashion-mnist.js";
import {
  FASHION_MNIST_MINI_FINGERPRINT,
  MINI_NAME,
  MINI_SEEDS,
  MINI_TEST_PER_CLASS,
  MINI_TRAIN_PER_CLASS,
  miniDataDir,
} from "../datasets/fashion-mnist-mini.js";
import { IDX_FILES } from "../datasets/formats/mnist-layout.js";
import { maybeGunzip } from "../datasets/formats/idx.js";
import { buildMiniFiles } from "../datasets/mini-build.js";

function usage(): never {
  process.stderr.write("usage: make-fashion-mnist-mini [--data-dir DIR] [--out DIR] [--check]\n");
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let dataDir: string | undefined;
  let out = miniDataDir();
  let check = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--data-dir" && args[i + 1]) dataDir = args[++i];
    else if (a === "--out" && args[i + 1]) out = resolve(args[++i]);
    else if (a === "--check") check = true;
    else usage();
  }

  const full = await loadFashionMnist({ dataDir });
  if (full.fingerprint !== FASHION_MNIST_FINGERPRINT) {
    throw new Error(
      `the Fashion-MNIST files in ${full.source} are not the genuine ones (fingerprint ${full.fingerprint}, ` +
        `expected ${FASHION_MNIST_FINGERPRINT}); refusing to build the mini dataset from them`,
    );
  }
  const files = buildMiniFiles(full, {
    numClasses: full.numClasses,
    trainPerClass: MINI_TRAIN_PER_CLASS,
    testPerClass: MINI_TEST_PER_CLASS,
    seeds: MINI_SEEDS,
  });

  const fingerprint = contentFingerprint(MINI_NAME, IDX_FILES.map((name) => ({ name, bytes: files.get(name)! })));

  let differ = 0;
  if (!check) await mkdir(out, { recursive: true });
  for (const [name, content] of files) {
    const path = join(out, `${name}.gz`);
    const sha = createHash("sha256").update(content).digest("hex");
    if (check) {
      const existing = await readFile(path).then((gz) => maybeGunzip(gz, path)).catch(() => undefined);
      const same = existing !== undefined && Buffer.compare(existing, Buffer.from(content)) === 0;
      if (!same) differ++;
      process.stdout.write(`${same ? "same   " : "DIFFERS"} ${path}  ${content.length} bytes of content  sha256 ${sha}\n`);
    } else {
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, gzipSync(content, { level: 9 }));
      await rename(tmp, path);
      process.stdout.write(`wrote ${path}  ${content.length} bytes of content  sha256 ${sha}\n`);
    }
  }
  process.stdout.write(`source: ${full.source} (fingerprint ${full.fingerprint})\n`);
  process.stdout.write(`fashion-mnist-mini fingerprint: ${fingerprint}\n`);
  if (fingerprint !== FASHION_MNIST_MINI_FINGERPRINT) {
    process.stdout.write(`note: differs from FASHION_MNIST_MINI_FINGERPRINT in datasets/fashion-mnist-mini.ts (${FASHION_MNIST_MINI_FINGERPRINT})\n`);
  }
  if (check && differ > 0) {
    process.stdout.write(`${differ} file(s) differ from the committed ones\n`);
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`make-fashion-mnist-mini: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
