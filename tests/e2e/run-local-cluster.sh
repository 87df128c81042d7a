#!/usr/bin/env bash
# The e2e tier as `make test` and `make e2e` run it. Usage: tests/e2e/run-local-cluster.sh PYTEST [ARGS...]
#
# - KUBECONFIG set: the tier runs against that cluster (E2E_WEBHOOK_HOST must name this machine for it).
# - else, when ../shared/k8s/up.sh exists (or E2E_K8S_DIR/up.sh): that local control plane is started with the
#   controller manager (K8S_E2E_KCM=1), the tier runs against it with E2E_WEBHOOK_HOST=127.0.0.1, and it is
#   stopped with down.sh afterwards, also when tests fail or the run is interrupted. A control plane that was
#   already running is left running. In this mode a cluster that cannot be reached fails the tier instead of
#   skipping it (E2E_REQUIRE_CLUSTER=1).
# - else: the tier is collected and every test skips with the reason; the command passes.
#
# Exit status: pytest's, except that 5 (no tests collected), a control plane that does not come up and a tier
# that runs longer than E2E_TIER_TIMEOUT (900 s) are failures. Prints pytest's summary line and the tier's
# duration.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTEST=${1:?usage: $0 PYTEST [pytest args...]}
shift
K8S_DIR=${E2E_K8S_DIR:-$(dirname "$ROOT")/shared/k8s}
H=${K8S_E2E_HOME:-/tmp/k8s-e2e}
cd "$ROOT" || exit 1

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "[e2e] $*" >&2; }

started=0
stop_cluster() {
  if [ "$started" = 1 ]; then
    local t
    t=$(now)
    bash "$K8S_DIR/down.sh"
    say "local control plane stopped in $(since "$t")s"
    started=0
  fi
}
trap stop_cluster EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

apiserver_running() { # the pid file up.sh wrote names a live kube-apiserver of $H
  local pid exe
  pid=$(cat "$H/run/apiserver.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "${exe% (deleted)}" = "$H/bin/kube-apiserver" ]
}

if [ -n "${KUBECONFIG:-}" ]; then
  say "cluster: KUBECONFIG=$KUBECONFIG"
elif [ -f "$K8S_DIR/up.sh" ]; then
  was_running=0
  apiserver_running && was_running=1
  t=$(now)
  if ! KUBECONFIG=$(K8S_E2E_KCM=1 bash "$K8S_DIR/up.sh"); then
    say "FAILED: $K8S_DIR/up.sh could not start the local control plane (logs: $H/logs/)"
    [ "$was_running" = 1 ] || started=1 # stop whatever part of it did start
    exit 1
  fi
  [ "$was_running" = 1 ] || started=1
  export KUBECONFIG
  export E2E_WEBHOOK_HOST=${E2E_WEBHOOK_HOST:-127.0.0.1}
  export E2E_REQUIRE_CLUSTER=1
  if [ "$was_running" = 1 ]; then
    say "cluster: the local control plane already running in $H (left running)"
  else
    say "cluster: local control plane of $K8S_DIR started in $(since "$t")s (stopped afterwards)"
  fi
else
  say "no cluster: KUBECONFIG unset and no $K8S_DIR/up.sh; the e2e tests skip"
fi

# the tier as a whole is bounded too (each test has its own 300 s): SIGINT, so that pytest still runs the
# teardowns (webhook configurations, processes, namespaces), then SIGKILL a minute later
BOUND=${E2E_TIER_TIMEOUT:-900}
t=$(now)
timeout -s INT -k 60 "$BOUND" "$PYTEST" -q -rs tests/e2e "$@"
rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  say "FAILED: the e2e tier did not finish within ${BOUND}s (E2E_TIER_TIMEOUT)"
  rc=1
elif [ "$rc" = 5 ]; then
  say "FAILED: pytest collected no e2e tests"
  rc=1
fi
if [ "$rc" = 0 ]; then outcome=passed; else outcome="FAILED (exit $rc)"; fi
say "e2e tier $outcome in $(since "$t")s"
exit "$rc"
