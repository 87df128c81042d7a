#!/usr/bin/env bash
# Certificates for the chart's `certificates.mode: secret`, for a cluster where the webhook does not manage
# its own (no self-managed mode, no cert-manager): a CA and a serving certificate for the webhook's Service,
# a kubernetes.io/tls Secret manifest holding the pair, and a values file that points the chart at both.
#
#   certs/secret-mode.sh [--service NAME] [--namespace NS] [--secret NAME] [--out DIR] [--apply] [--force]
#                        [--extra-san NAME]... [--ca-validity 365d] [--cert-validity 365d]
#
#   --service     the chart's full name, the Service in front of the webhook (dynatrace-webhook)
#   --namespace   the release namespace (dynatrace)
#   --secret      the Secret's name (<service>-tls)
#   --out         folder for ca.crt, ca.key, tls.crt, tls.key, secret.yaml, values.yaml (./webhook-certs)
#   --apply       also kubectl apply the Secret
#
# Then: helm install <release> charts/dynatrace-webhook -n <namespace> -f <out>/values.yaml
# Nothing rotates these certificates: renew before --cert-validity ends (run again with --force, apply, and
# upgrade the release with the new values.yaml). The certificate tool is `dynatrace-webhook certs`; set
# DYNATRACE_WEBHOOK_CERTS to run another command (e.g. "python -m webhook.tls.tool").
set -euo pipefail

service=dynatrace-webhook
namespace=dynatrace
secret=""
out=./webhook-certs
apply=false
tool_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --service) service=$2; shift 2 ;;
        --namespace) namespace=$2; shift 2 ;;
        --secret) secret=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --apply) apply=true; shift ;;
        --force) tool_args+=(--force); shift ;;
        --extra-san | --ca-validity | --cert-validity) tool_args+=("$1" "$2"); shift 2 ;;
        -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "secret-mode.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
secret=${secret:-$service-tls}
read -r -a tool <<<"${DYNATRACE_WEBHOOK_CERTS:-dynatrace-webhook certs}"

# the chart's default serving certificate lifetime here is a year: nothing renews it
"${tool[@]}" generate --out "$out" --service "$service" --namespace "$namespace" \
    --cert-validity 365d ${tool_args[@]+"${tool_args[@]}"}
"${tool[@]}" verify --ca-bundle "$out/ca.crt" --cert "$out/tls.crt" --name "$service.$namespace.svc"

b64() { base64 <"$1" | tr -d '\n'; }
cat >"$out/secret.yaml" <<EOF
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata:
  name: $secret
  namespace: $namespace
data:
  tls.crt: $(b64 "$out/tls.crt")
  tls.key: $(b64 "$out/tls.key")
EOF
cat >"$out/values.yaml" <<EOF
certificates:
  mode: secret
  secret:
    name: $secret
    caBundle: $(b64 "$out/ca.crt")
EOF
echo "wrote $out/secret.yaml (Secret $namespace/$secret) and $out/values.yaml"
if [ "$apply" = true ]; then
    kubectl apply -f "$out/secret.yaml"
fi
