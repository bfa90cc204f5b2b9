#!/bin/sh
# The chroma-gate service: nginx in front of Chroma, refusing every request without the bearer token.
# Chroma 1.5.9's server (its Rust frontend, what `chroma run` and the chromadb/chroma image run) has no
# authentication of its own: the CHROMA_SERVER_AUTHN_* settings of the 0.x Python server are ignored.
# So Chroma sits alone on the internal `memory` network and this gate is its only door
# (compose/README.md, "Chroma").
#
#   CHROMA_TOKEN_FILE  the token file (required); clients send `Authorization: Bearer <token>`
#   CHROMA_UPSTREAM    Chroma's host:port (default chroma:8000)
#   CHROMA_GATE_PORT   where the gate listens (default 8000)
#   CHROMA_GATE_RESOLVER  DNS server for CHROMA_UPSTREAM (default 127.0.0.11, Docker's own)
#
# nginx's config, token included, is written at start to /tmp (a tmpfs; the image stays read-only).
# A missing, empty or malformed token file exits 78 (EX_CONFIG) naming it, never printing the token.
set -eu

fail() {
  echo "config error: $1" >&2
  exit 78
}

f="${CHROMA_TOKEN_FILE:-}"
[ -n "$f" ] || fail "CHROMA_TOKEN_FILE: required, but not set"
[ -r "$f" ] || fail "CHROMA_TOKEN_FILE: cannot read $f"
token="$(cat "$f")"
[ -n "$token" ] || fail "CHROMA_TOKEN_FILE: $f is empty"
# Token characters only: the token is written into nginx's config, where a quote or a '$' would change it.
case "$token" in *[!A-Za-z0-9._~+/=-]*) fail "CHROMA_TOKEN_FILE: $f holds characters other than A-Z a-z 0-9 . _ ~ + / = -" ;; esac
[ "${#token}" -ge 16 ] || fail "CHROMA_TOKEN_FILE: $f must hold at least 16 characters"
upstream="${CHROMA_UPSTREAM:-chroma:8000}"
port="${CHROMA_GATE_PORT:-8000}"
resolver="${CHROMA_GATE_RESOLVER:-127.0.0.11}"

conf=/tmp/chroma-gate.conf
umask 077
cat >"$conf" <<CONF
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 512; }
http {
  # Writable paths on the tmpfs: the image's own (/var/cache/nginx, /var/lib/nginx) are read-only.
  client_body_temp_path /tmp/client_body;
  proxy_temp_path /tmp/proxy;
  fastcgi_temp_path /tmp/fastcgi;
  uwsgi_temp_path /tmp/uwsgi;
  scgi_temp_path /tmp/scgi;
  client_max_body_size 32m;
  server_tokens off;
  # Refusals are worth a line (who knocked without the token); the traffic that passes is not.
  map \$status \$refused { 401 1; default 0; }
  log_format refused '\$time_iso8601 refused \$remote_addr "\$request_method \$uri" \$status';
  access_log /dev/stdout refused if=\$refused;
  # Looked up again every 10 s, not once at start: a restarted Chroma may come back at a new address.
  resolver $resolver valid=10s;
  server {
    listen $port;
    # The container's healthcheck: says the gate runs, nothing about Chroma, and needs no token.
    location = /healthz { access_log off; return 200 "ok\n"; }
    location / {
      # 'if' compares exactly (case-sensitive), unlike map's string keys.
      if (\$http_authorization != "Bearer $token") { return 401; }
      proxy_set_header Authorization "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 120s;
      set \$chroma http://$upstream;
      proxy_pass \$chroma;
    }
  }
}
CONF

exec nginx -c "$conf" -e stderr -g 'daemon off;'
