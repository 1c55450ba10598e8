#!/usr/bin/env bash
# Installs the packed tarball, as users get it, into a CJS and an ESM project: runs a request through each, then
# type-checks a TypeScript app in each under the strictest settings `tsc --init` of our TypeScript writes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
version_of() { node -p "require('$1/package.json').version"; }
orq_version=$(version_of @orq-ai/node)
express_version=$(version_of express)
typescript_version=$(version_of typescript)
types_express_version=$(version_of @types/express)
types_node_version=$(version_of @types/node)

for kind in cjs esm; do
  dir="$work/$kind"
  mkdir -p "$dir"
  if [[ $kind == esm ]]; then type=module; file=smoke.mjs; else type=commonjs; file=smoke.cjs; fi
  printf '{ "name": "smoke-%s", "private": true, "type": "%s" }\n' "$kind" "$type" > "$dir/package.json"
  cp "$root/.ci/consumer/$file" "$dir/"
  cp "$root/.ci/consumer/strict-$kind.ts" "$dir/app.ts"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$work/$tarball" "@orq-ai/node@$orq_version" "express@$express_version" \
    "typescript@$typescript_version" "@types/express@$types_express_version" "@types/node@$types_node_version" >/dev/null)
  (cd "$dir" && node "$file")
  # tsc --init's own tsconfig (exactOptionalPropertyTypes, noUncheckedIndexedAccess, verbatimModuleSyntax, strict…);
  # only `types` is widened to Node's (init writes `types: []`).
  (cd "$dir" && npx --no-install tsc --init >/dev/null && npx --no-install tsc -p . --noEmit --types node)
  echo "$kind TypeScript consumer (tsc --init settings): ok"
done

# @orq-ai/node is an optional peer: an app without it must install, run and type-check.
dir="$work/no-sdk"
mkdir -p "$dir"
printf '{ "name": "smoke-no-sdk", "private": true, "type": "module" }\n' > "$dir/package.json"
cp "$root/.ci/consumer/smoke.mjs" "$root/.ci/consumer/smoke-types.ts" "$dir/"
(cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$work/$tarball" "express@$express_version" "@types/express@$types_express_version" >/dev/null)
if [[ -e "$dir/node_modules/@orq-ai/node" ]]; then echo "npm installed the optional peer @orq-ai/node" >&2; exit 1; fi
(cd "$dir" && node smoke.mjs)
(cd "$dir" && "$root/node_modules/.bin/tsc" --noEmit --strict --skipLibCheck false --module nodenext --moduleResolution nodenext --target es2022 --types node --typeRoots "$root/node_modules/@types" smoke-types.ts)
echo "Without @orq-ai/node: installs, serves, type-checks"
