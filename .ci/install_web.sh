#!/usr/bin/env bash
# Installs what the browser tests of the 4D preview widget need, idempotently:
#   - Debian's chromium (only when /usr/bin/chromium is missing; needs root, as on CI),
#   - the pinned npm packages of tests/web (playwright-core drives chromium; three is the
#     reference copy the vendored three.js files are checked against).
# Playwright's own browser download is never used: the tests launch /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
fi

# npm ci wipes and reinstalls node_modules; skip it when the installed tree already matches the lock.
LOCK=tests/web/package-lock.json
STAMP=tests/web/node_modules/.one4d-lock.sha256
want="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  (cd tests/web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  echo "$want" > "$STAMP"
fi
