#!/bin/sh
# The egress proxy's start: writes squid.conf from the environment, then runs squid in the foreground.
# Each flotilla service that may go out is named in EGRESS_SERVICES and gets its own allowlist in
# EGRESS_ALLOW_<SERVICE> (upper case), a comma list of `host`, `host:port`, `*.glob`, an address,
# `address:port`, each optionally followed by a `/path` (ignored here: through a CONNECT tunnel the proxy
# sees only host and port; the researcher's http.get enforces paths). Without a port an entry allows
# 80 and 443 only. compose/README.md ("Egress") explains the whole scheme.
set -eu

conf="${EGRESS_SQUID_CONF:-/tmp/squid.conf}"
services="${EGRESS_SERVICES:-}"
# The callers' names, as the DNS answers for their addresses. Compose (the default): container names,
# <project>-<service>-<n>.<network> (Compose v2), <project>_<service>_<n>.<network> (v1), or a Swarm
# task's <stack>_<service>.<slot>.<task id>.<network> (docs/swarm.md).
# EGRESS_CALLER_NAMES=kubernetes: the endpoints of each caller's headless Service `<service>-caller`,
# <a-b-c-d>.<service>-caller.<namespace>.svc.<zone> (deploy/k8s, docs/kubernetes.md).
case "${EGRESS_CALLER_NAMES:-compose}" in
  compose) name_regex() { printf '^[^.]*[-_]%s([-_][0-9]+|\\.[0-9]+\\.[0-9a-z]+)\\.' "$1"; } ;;
  kubernetes) name_regex() { printf '^[^.]+\\.%s-caller\\.' "$1"; } ;;
  *)
    echo "EGRESS_CALLER_NAMES: expected compose or kubernetes, got '${EGRESS_CALLER_NAMES}'" >&2
    exit 78
    ;;
esac
# A host glob (picomatch semantics for names: `*` is any run of characters) as an anchored regex.
glob_regex() { printf '^%s$' "$(printf '%s' "$1" | sed -e 's/[].[^$\\+(){}|]/\\&/g' -e 's/\*/.*/g' -e 's/?/./g')"; }
is_ipv4() { printf '%s' "$1" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$'; }

{
  cat <<'HEAD'
# Generated at start by /usr/local/bin/flotilla-egress-proxy from EGRESS_SERVICES / EGRESS_ALLOW_*.
http_port 3128
pid_filename none
coredump_dir /tmp
cache deny all
cache_mem 8 MB
netdb_filename none
shutdown_lifetime 5 seconds
# No ICMP (it needs a capability this container does not have) and no cache: a pure forwarder.
pinger_enable off
# One JSON line per request on stdout: who asked (the service and its container name from Docker's
# DNS), for what host and port, and the outcome (TCP_DENIED/403 for a refusal). No paths or queries.
logformat flotilla {"time":%ts.%03tu,"service":"%{service}note","client":"%>a","client_name":"%>A","method":"%rm","host":"%>rd","port":"%>rP","status":%>Hs,"result":"%Ss","bytes":%<st}
access_log stdio:/dev/stdout logformat=flotilla
cache_log stdio:/dev/stderr
logfile_rotate 0
# Per-client counters (requests and TCP_DENIED per address, with its DNS name) for the cache manager:
#   squidclient -h 127.0.0.1 -p 3128 mgr:client_list
client_db on
acl manager_local src 127.0.0.1/32 ::1
http_access allow manager manager_local
http_access deny manager
# Destinations that are never "the internet": loopback, link-local (cloud metadata), private and
# shared ranges. Reachable only when a service lists the address itself (as http.get requires too).
acl to_private dst 0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.168.0.0/16 198.18.0.0/15 ::/128 ::1 fc00::/7 fe80::/10
acl default_ports port 80 443
HEAD

  addr_rules='' name_rules=''
  for svc in $services; do
    upper="$(printf '%s' "$svc" | tr 'a-z-' 'A-Z_')"
    printf 'acl svc_%s srcdom_regex -i %s\n' "$upper" "$(name_regex "$svc")"
    printf 'note service %s svc_%s\n' "$svc" "$upper"
    list="$(printenv "EGRESS_ALLOW_$upper" || true)"
    i=0
    old_ifs="$IFS"
    IFS=','
    for entry in $list; do
      entry="$(printf '%s' "$entry" | tr -d ' \t')"
      [ -n "$entry" ] || continue
      i=$((i + 1))
      hostport="${entry%%/*}"
      host="$hostport" port=''
      case "$hostport" in
        *:*) host="${hostport%:*}" port="${hostport##*:}" ;;
      esac
      id="${upper}_$i"
      if [ -n "$port" ]; then
        printf 'acl port_%s port %s\n' "$id" "$port"
        ports="port_$id"
      else
        ports='default_ports'
      fi
      if is_ipv4 "$host"; then
        printf 'acl dest_%s dst %s\n' "$id" "$host"
        addr_rules="$addr_rules
http_access allow svc_$upper dest_$id $ports"
      else
        printf 'acl dest_%s dstdom_regex -i %s\n' "$id" "$(glob_regex "$host")"
        name_rules="$name_rules
http_access allow svc_$upper dest_$id $ports"
      fi
    done
    IFS="$old_ifs"
  done
  printf '%s\n' "# Listed addresses first: they may be private." "$addr_rules"
  printf '%s\n' 'http_access deny to_private' "$name_rules"
  printf '%s\n' '# Everything else, and every caller that is not a named service: refused (403, logged).' 'http_access deny all'
} >"$conf"

if [ "${1:-}" = "--print-config" ]; then
  cat "$conf"
  exit 0
fi
exec squid -N -f "$conf"
