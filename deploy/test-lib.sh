# Helpers shared by deploy/test-compose.sh and deploy/test-systemd.sh (sourced, not run).
# Each script defines its own `fail` (what to print and clean up) and `farmc` (how to run the
# farm CLI next to its master).

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

# wait_for SECONDS WHAT COMMAND...: runs COMMAND until it succeeds, for at most SECONDS.
wait_for() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for $what"
        sleep 0.5
    done
}

# JSON fields from farm's one-line --json output, without jq.
field() { sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p" <<<"$1" | head -1 | tr -d '"'; }
count_workers() { grep -o '"worker":[0-9]*' <<<"$1" | wc -l | tr -d ' '; }
workers_are() { [[ $(count_workers "$(farmc workers --json 2>/dev/null)") == "$1" ]]; }
# Whether this farm has `farm master --journal` (read whole: `grep -q` in a pipe under pipefail
# can fail when it stops reading early).
has_journal() { [[ $(farmc master --help 2>/dev/null) == *--journal* ]]; }
