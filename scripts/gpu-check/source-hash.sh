#!/usr/bin/env bash
# One sha256 over the TypeScript sources that tsc compiles into dist/ (paths and contents), so run.sh can tell whether
# the carried bundle's dist/ was built from the tree it runs in. Same output on any machine with coreutils.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
find src methods datasets reports scripts test -type f -name '*.ts' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
