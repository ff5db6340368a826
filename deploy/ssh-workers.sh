#!/usr/bin/env bash
# Start, stop or check farm workers on a list of hosts over ssh, for people without an
# orchestrator (like `dask ssh` or `hq worker deploy-ssh`).
#
#   deploy/ssh-workers.sh start  HOSTS_FILE --master http://MASTER:7070 [--threads T] [--farm PATH] [--token-file F]
#   deploy/ssh-workers.sh stop   HOSTS_FILE      # SIGTERM: each worker drains, then exits
#   deploy/ssh-workers.sh status HOSTS_FILE
#
# HOSTS_FILE: one ssh destination per line (host, user@host, or an alias from ~/.ssh/config);
# `#` starts a comment. SSH_OPTS is passed to ssh (e.g. SSH_OPTS="-p 2222 -i key").
# `start` copies the farm binary to ~/.farm/farm on each host (same CPU architecture and glibc
# assumed), the token (if any) to ~/.farm/token through stdin so it never shows in a command
# line, and starts `farm worker` in the background with its log in ~/.farm/worker.log.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
action=$1 hosts_file=$2
shift 2
master="" threads="" farm="" token_file=""
while [ $# -gt 0 ]; do
  case $1 in
    --master) master=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --farm) farm=$2; shift 2 ;;
    --token-file) token_file=$2; shift 2 ;;
    *) echo "error: unknown option $1" >&2; usage ;;
  esac
done
[ -r "$hosts_file" ] || { echo "error: cannot read $hosts_file" >&2; exit 2; }
[ -z "$token_file" ] || [ -r "$token_file" ] || { echo "error: cannot read $token_file" >&2; exit 2; }
read -r -a ssh_opts <<<"${SSH_OPTS:-}"
hosts=$(sed 's/#.*//' "$hosts_file" | awk 'NF {print $1}')

on() { ssh "${ssh_opts[@]}" -o BatchMode=yes "$1" "$2"; }

failed=0
for host in $hosts; do
  case $action in
    start)
      [ -n "$master" ] || { echo "error: start needs --master URL" >&2; exit 2; }
      bin=${farm:-$(command -v farm || echo ./target/release/farm)}
      [ -x "$bin" ] || { echo "error: farm binary $bin not found (use --farm)" >&2; exit 2; }
      # The binary travels through ssh's stdin: no scp or sftp needed on the host.
      on "$host" 'mkdir -p ~/.farm && chmod 700 ~/.farm && cat > ~/.farm/farm.new && chmod 755 ~/.farm/farm.new && mv ~/.farm/farm.new ~/.farm/farm' <"$bin" ||
        { echo "$host: copy failed"; failed=1; continue; }
      env_part=""
      if [ -n "$token_file" ]; then
        on "$host" 'umask 077 && cat > ~/.farm/token' <"$token_file" ||
          { echo "$host: token copy failed"; failed=1; continue; }
        env_part='FARM_TOKEN_FILE=$HOME/.farm/token'
      fi
      args="worker --master $(printf %q "$master") --name $(printf %q "$host")"
      [ -n "$threads" ] && args+=" --threads $(printf %q "$threads")"
      if on "$host" "if [ -f ~/.farm/worker.pid ] && kill -0 \$(cat ~/.farm/worker.pid) 2>/dev/null; then echo 'already running'; exit 1; fi
          $env_part nohup ~/.farm/farm $args >~/.farm/worker.log 2>&1 </dev/null & echo \$! > ~/.farm/worker.pid"; then
        echo "$host: started"
      else
        echo "$host: not started"; failed=1
      fi
      ;;
    stop)
      # Only a pid that is still a farm process is signalled (pids get reused).
      if on "$host" 'pid=$(cat ~/.farm/worker.pid 2>/dev/null) && [ "$(ps -p "$pid" -o comm= 2>/dev/null)" = farm ] && kill -TERM "$pid" && rm -f ~/.farm/worker.pid'; then
        echo "$host: draining and stopping"
      else
        echo "$host: not running"
      fi
      ;;
    status)
      if on "$host" 'kill -0 $(cat ~/.farm/worker.pid 2>/dev/null) 2>/dev/null'; then
        echo "$host: running"
      else
        echo "$host: stopped"; failed=1
      fi
      ;;
    *) usage ;;
  esac
done
exit $failed
