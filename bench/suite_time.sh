#!/usr/bin/env bash
# How long `make test` takes, for two commits side by side in one sitting.
#
#   bench/suite_time.sh BEFORE [AFTER]      (AFTER defaults to HEAD)
#
# Each commit is cloned fresh into a temporary folder and installed first (`make
# .venv/.installed`), so only the suite itself is timed; then each `make test` runs with
# nothing else on the machine. Compare the two figures as a ratio: machines differ.
set -euo pipefail
before=${1:?usage: bench/suite_time.sh BEFORE [AFTER]}
after=${2:-HEAD}
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for name in before after; do
  rev=${!name}
  git clone -q "$repo" "$work/$name"
  git -C "$work/$name" checkout -q "$(git -C "$repo" rev-parse "$rev")"
  make -C "$work/$name" .venv/.installed >/dev/null
done
for name in before after; do
  echo "== $name (${!name})"
  ( cd "$work/$name" && /usr/bin/time -f "wall %e s, user %U s, sys %S s" make test 2>&1 | tail -3 )
done
