# Sourced by ./quickstart and .ci/run: puts Node 24 first on PATH (from the node@24 npm package, into
# a cache folder, when the machine's Node is older; the system Node stays), installs rsync from Debian
# when missing, and installs the project's npm dependencies.
CACHE="${CIDMIRROR_CACHE:-$HOME/.cache/cidmirror}"
mkdir -p "$CACHE"

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 24 ]; then
  if [ ! -x "$CACHE/node24/node_modules/node/bin/node" ]; then
    command -v npm >/dev/null || { echo "cidmirror: npm is needed to fetch Node 24 (apt-get install npm)" >&2; exit 1; }
    echo "cidmirror: installing Node 24 into $CACHE/node24" >&2
    npm install --no-save --no-audit --no-fund --prefix "$CACHE/node24" node@24 >&2
  fi
  export PATH="$CACHE/node24/node_modules/node/bin:$PATH"
fi

need=()
for t in rsync openssl; do command -v "$t" >/dev/null || need+=("$t"); done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "cidmirror: installing ${need[*]} from Debian" >&2
  $SUDO apt-get install -y "${need[@]}" >&2 || { $SUDO apt-get update >&2 && $SUDO apt-get install -y "${need[@]}" >&2; }
fi

# `npm ci` refuses a lock file that lacks optional platform packages the partial registry mirror
# does not carry (biome's win32/android builds); `npm install` keeps the locked versions and skips them.
npm install --no-audit --no-fund >&2
