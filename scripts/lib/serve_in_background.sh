# Sourced by scripts that need a running server: serve_in_background ARGS... starts
# `build/glm4-actor serve ARGS...`, waits for its "ready" line (up to 2 minutes; a server that exits prints its
# stderr and fails the script), and sets $server (the pid), $server_log (its folder: out, err) and $server_url
# (http://host:port/v1). The server is stopped, and the folder removed, when the script exits.
serve_in_background() {
  server_log=$(mktemp -d)
  build/glm4-actor serve "$@" >"$server_log/out" 2>"$server_log/err" &
  server=$!
  trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$server_log"' EXIT
  local _
  for _ in $(seq 1200); do
    grep -q "ready" "$server_log/out" && break
    kill -0 "$server" 2>/dev/null || { cat "$server_log/err" >&2; return 1; }
    sleep 0.1
  done
  grep -q "ready" "$server_log/out" || { echo "glm4-actor serve did not get ready in time" >&2; return 1; }
  server_url=$(sed -n 's/.* at \(http:[^ ]*\).*/\1/p' "$server_log/out")
}
