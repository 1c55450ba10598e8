#!/usr/bin/env bash
# Installs the packed tarball, as users get it, into a CJS and an ESM project and runs a request through each.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
orq_version=$(node -p "require('@orq-ai/node/package.json').version")
express_version=$(node -p "require('express/package.json').version")

for kind in cjs esm; do
  dir="$work/$kind"
  mkdir -p "$dir"
  if [[ $kind == esm ]]; then type=module; file=smoke.mjs; else type=commonjs; file=smoke.cjs; fi
  printf '{ "name": "smoke-%s", "private": true, "type": "%s" }\n' "$kind" "$type" > "$dir/package.json"
  cp "$root/.ci/consumer/$file" "$dir/"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$work/$tarball" "@orq-ai/node@$orq_version" "express@$express_version" >/dev/null)
  (cd "$dir" && node "$file")
done

# @orq-ai/node is an optional peer: an app without it must install, run and type-check.
dir="$work/no-sdk"
mkdir -p "$dir"
printf '{ "name": "smoke-no-sdk", "private": true, "type": "module" }\n' > "$dir/package.json"
cp "$root/.ci/consumer/smoke.mjs" "$root/.ci/consumer/smoke-types.ts" "$dir/"
types_version=$(node -p "require('@types/express/package.json').version")
(cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$work/$tarball" "express@$express_version" "@types/express@$types_version" >/dev/null)
if [[ -e "$dir/node_modules/@orq-ai/node" ]]; then echo "npm installed the optional peer @orq-ai/node" >&2; exit 1; fi
(cd "$dir" && node smoke.mjs)
(cd "$dir" && "$root/node_modules/.bin/tsc" --noEmit --strict --skipLibCheck false --module nodenext --moduleResolution nodenext --target es2022 --types node --typeRoots "$root/node_modules/@types" smoke-types.ts)
echo "Without @orq-ai/node: installs, serves, type-checks"
