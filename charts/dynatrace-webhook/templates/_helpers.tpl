{{/*
Names. Everything here is a pure function of the values and the release: no random or time-based output,
so two renders with the same input are byte-identical (GitOps diffs stay quiet).
*/}}

{{- define "dynatrace-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dynatrace-webhook.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "dynatrace-webhook.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dynatrace-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dynatrace-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dynatrace-webhook.baseLabels" -}}
helm.sh/chart: {{ include "dynatrace-webhook.chart" . }}
{{ include "dynatrace-webhook.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: dynatrace
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "dynatrace-webhook.labels" -}}
{{ include "dynatrace-webhook.baseLabels" . }}
app.kubernetes.io/component: webhook
{{- end -}}

{{/* Labels of the metrics Service: its own component, so the ServiceMonitor selects it alone. */}}
{{- define "dynatrace-webhook.metricsLabels" -}}
{{ include "dynatrace-webhook.baseLabels" . }}
app.kubernetes.io/component: metrics
{{- end -}}

{{- define "dynatrace-webhook.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dynatrace-webhook.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false: name an existing ServiceAccount" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dynatrace-webhook.metricsServiceName" -}}
{{- printf "%s-metrics" (include "dynatrace-webhook.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The image reference of the webhook. */}}
{{- define "dynatrace-webhook.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* How the webhook reads its serving certificate: self-managed writes it; the other modes mount a Secret. */}}
{{- define "dynatrace-webhook.certMode" -}}
{{- if eq .Values.certificates.mode "self-managed" -}}self-managed{{- else -}}files{{- end -}}
{{- end -}}

{{- define "dynatrace-webhook.servingCertName" -}}
{{- printf "%s-serving" (include "dynatrace-webhook.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of the Secret mounted at the certificates directory in the files modes. */}}
{{- define "dynatrace-webhook.certSecretName" -}}
{{- if eq .Values.certificates.mode "cert-manager" -}}
{{- printf "%s-serving-cert" (include "dynatrace-webhook.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- else if eq .Values.certificates.mode "secret" -}}
{{- required "certificates.secret.name is required when certificates.mode is \"secret\": name a kubernetes.io/tls Secret in the release namespace holding tls.crt and tls.key" .Values.certificates.secret.name -}}
{{- end -}}
{{- end -}}

{{/* Annotations shared by both webhook configurations (CA injection by cert-manager). */}}
{{- define "dynatrace-webhook.webhookConfigAnnotations" -}}
{{- if eq .Values.certificates.mode "cert-manager" -}}
cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "dynatrace-webhook.servingCertName" .) }}
{{- end -}}
{{- end -}}

{{/* clientConfig of one webhook: path is the only argument besides the root context. */}}
{{- define "dynatrace-webhook.clientConfig" -}}
{{- $root := index . 0 -}}
{{- $path := index . 1 -}}
service:
  name: {{ include "dynatrace-webhook.fullname" $root }}
  namespace: {{ $root.Release.Namespace }}
  path: {{ $path }}
  port: {{ $root.Values.service.port }}
{{- if eq $root.Values.certificates.mode "secret" }}
caBundle: {{ required "certificates.secret.caBundle is required when certificates.mode is \"secret\": the base64-encoded PEM of the CA that signed the serving certificate" $root.Values.certificates.secret.caBundle }}
{{- end }}
{{- end -}}

{{/* Namespaces the API server never sends to the webhook: its own and the configured ones. */}}
{{- define "dynatrace-webhook.excludedNamespaces" -}}
{{- $names := list .Release.Namespace -}}
{{- range .Values.webhooks.excludeNamespaces -}}
{{- if not (has . $names) -}}{{- $names = append $names . -}}{{- end -}}
{{- end -}}
{{- toYaml $names -}}
{{- end -}}

{{/* Effective minimum replica count: decides whether a PodDisruptionBudget makes sense. */}}
{{- define "dynatrace-webhook.minReplicas" -}}
{{- if .Values.autoscaling.enabled -}}{{ .Values.autoscaling.minReplicas }}{{- else -}}{{ .Values.replicaCount }}{{- end -}}
{{- end -}}

{{/* The image of the injected dynatrace-operator init container (a Dynatrace Operator image). */}}
{{- define "dynatrace-webhook.initImage" -}}
{{- if .Values.initImage.digest -}}
{{- printf "%s@%s" .Values.initImage.repository .Values.initImage.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.initImage.repository .Values.initImage.tag -}}
{{- end -}}
{{- end -}}

{{/* The init image of the v1.10 contract (a Dynatrace Operator image whose bootstrap command runs). */}}
{{- define "dynatrace-webhook.bootstrapperImage" -}}
{{- if .Values.bootstrapperImage.digest -}}
{{- printf "%s@%s" .Values.bootstrapperImage.repository .Values.bootstrapperImage.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.bootstrapperImage.repository .Values.bootstrapperImage.tag -}}
{{- end -}}
{{- end -}}
