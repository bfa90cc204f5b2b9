#!/bin/sh
# Writes Redis's ACL file from one password file per user, then (given a command) execs it with
# --aclfile: the redis service's entrypoint in compose.yaml, and what the ACL tests run to build the
# very same file for a local redis-server. compose/README.md ("Redis users") says what each user
# may do and why; keep the two in step.
#
#   REDIS_SECRETS_DIR  where the password files are (default /run/secrets): redis_admin,
#                      redis_orchestrator, redis_dashboard, and redis_worker_<role> per worker role
#   QUEUE_PREFIX       the services' key prefix (default flotilla); every key pattern starts with it
#   REDIS_ACL_FILE     where to write (default /tmp/users.acl)
#
# Only SHA-256 hashes of the passwords go into the file. A missing, empty or malformed password file
# exits 78 (EX_CONFIG) naming it, never printing a password.
set -eu

dir="${REDIS_SECRETS_DIR:-/run/secrets}"
p="${QUEUE_PREFIX:-flotilla}"
out="${REDIS_ACL_FILE:-/tmp/users.acl}"

fail() {
  echo "config error: $1" >&2
  exit 78
}

# The prefix becomes part of glob patterns: a '*' or '?' in it would widen every user's keys. Braces
# are plain characters to Redis's glob and make a Redis Cluster hash tag: `{flotilla}` puts every key
# in one slot (docs/redis-cluster.md).
case "$p" in
  '' | *[!A-Za-z0-9._{}-]*) fail "QUEUE_PREFIX: expected letters, digits, '.', '_', '-', '{' or '}' (it is part of ACL key patterns)" ;;
esac

# "#<sha256>" of a password file's content. Passwords are token characters only, so the shell reads
# them exactly as the services do (they drop one trailing newline; so does $(...) for a valid file).
hashed() {
  f="$dir/$1"
  [ -r "$f" ] || fail "$1: $f is missing or unreadable"
  pw="$(cat "$f")"
  [ -n "$pw" ] || fail "$1: $f is empty"
  case "$pw" in *[!A-Za-z0-9._~+/=-]*) fail "$1: $f holds characters other than A-Z a-z 0-9 . _ ~ + / = -" ;; esac
  [ "${#pw}" -ge 16 ] || fail "$1: $f must hold at least 16 characters"
  printf '#%s' "$(printf '%s' "$pw" | sha256sum | cut -d' ' -f1)"
}

# Every service: all commands but the @dangerous ones (FLUSHALL, CONFIG, KEYS, DEBUG, CLIENT KILL|LIST,
# MONITOR, ...), with INFO back: ioredis's ready check and BullMQ's version and eviction-policy checks
# need it.
service_cmds='-@all +@all -@dangerous +info'

# Hashed first, each into a variable: an `exit` inside a command substitution used as an argument
# would end only that subshell, and the file would be written without the password.
admin="$(hashed redis_admin)"
orchestrator="$(hashed redis_orchestrator)"
dashboard="$(hashed redis_dashboard)"

umask 077
tmp="$out.tmp"
{
  # Nobody logs in without a user and a password.
  echo "user default off resetkeys resetchannels -@all"

  # The operator: everything (redis-cli, the kill switch by hand, the healthcheck).
  echo "user admin on $admin ~* &* +@all"

  # The API, planner, fan-in and sweeps: task state, its own queues and every role queue (it adds the
  # flows), the kill switch and cancellations, the operator actions stream (the admin API audits
  # there), its gateway's idempotency records (the aggregator writes memory through it), and
  # approvals (the admin API decides them; a cancel cancels them). The role registry is read-only to it.
  echo "user orchestrator on $orchestrator resetkeys resetchannels" \
    "~$p:task:* ~$p:tasks:* ~$p:tasks-by-owner:* ~$p:tasks-open-by-owner:* ~$p:task-key:* ~$p:ratelimit:* ~$p:cancelled:*" \
    "~$p:tool-idem:* ~$p:operator:* ~$p:approval:* ~$p:approvals:*" \
    "~$p:killswitch ~$p:role.* ~$p:orchestrator.* %R~$p:roles %R~$p:role:*" \
    "&$p:killswitch:changed &$p:cancel $service_cmds"

  # bull-board: read commands only. Key patterns are read-write because EVALSHA requires write access
  # to the keys it names (BullMQ's getters are Lua scripts); the scripts' own writes are refused
  # command by command, since ACL rules apply inside scripts too.
  echo "user dashboard on $dashboard resetkeys resetchannels" \
    "~$p:role.* ~$p:orchestrator.* %R~$p:roles" \
    "-@all +@read +@connection +@transaction +evalsha +eval +evalsha_ro +eval_ro +script|load +script|exists" \
    "-@dangerous +info"

  # A worker: its own queue and registry entry, the events of the tasks it runs. BullMQ forces the
  # fan-in queue (finishing a child job updates its parent there) and idempotency and cancelled keys
  # stay shared (named by task, not role), as do approvals and the journals of parked runs (named by
  # task and subtask). No PUBLISH: replicas trust cancel messages.
  for f in "$dir"/redis_worker_*; do
    [ -e "$f" ] || continue
    role="${f##*/redis_worker_}"
    case "$role" in
      '' | *[!a-z0-9_-]*) fail "$(basename "$f"): a role name is lowercase letters, digits, '_' or '-'" ;;
    esac
    worker="$(hashed "redis_worker_$role")"
    echo "user worker-$role on $worker resetkeys resetchannels" \
      "~$p:role.$role:* ~$p:role:$role:* ~$p:roles ~$p:orchestrator.aggregate:*" \
      "~$p:task:*:events ~$p:cancelled:* ~$p:tool-idem:* %R~$p:killswitch" \
      "~$p:approval:* ~$p:approvals:* ~$p:task:*:approvals ~$p:run-journal:*" \
      "&$p:killswitch:changed &$p:cancel $service_cmds -publish -spublish"
  done
} >"$tmp"
mv "$tmp" "$out"

[ "$#" -eq 0 ] || exec "$@" --aclfile "$out"
