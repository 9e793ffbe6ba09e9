# Sourced by ./cidmirror and scripts/node (POSIX sh). `find_node MAJOR MINOR` sets $node to a Node of
# at least that version: the one on PATH when it is new enough, else the Node 24 that ./quickstart and
# .ci/run install into the cache (scripts/ensure-env.sh); $node stays empty when there is neither.
# The system's Node is never replaced, only passed over.
cidmirror_cache=${CIDMIRROR_CACHE:-$HOME/.cache/cidmirror}
cached_node=$cidmirror_cache/node24/node_modules/node/bin/node

find_node() {
  node=""
  for candidate in "$(command -v node 2>/dev/null || true)" "$cached_node"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if "$candidate" -e "const [a, b] = process.versions.node.split('.').map(Number); process.exit(a > $1 || (a === $1 && b >= $2) ? 0 : 1)" 2>/dev/null; then
      node=$candidate
      return 0
    fi
  done
  return 1
}
