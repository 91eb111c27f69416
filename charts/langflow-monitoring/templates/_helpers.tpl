{{/*
Helpers of the monitoring chart.
*/}}

{{/* "true" when the Prometheus Operator's CRDs are served and the chart integrates with them. */}}
{{- define "langflow-monitoring.operator" -}}
{{- if and (eq .Values.mode "integration") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{/* Labels of PodMonitors and the PrometheusRule: the chart's labels plus prometheusSelectorLabels. */}}
{{- define "langflow-monitoring.metadata" -}}
{{- $m := include "langflow-common.metadata" (dict "context" .context "name" .name "component" .component "annotations" .annotations) | fromYaml -}}
{{- $_ := set $m "labels" (merge (dict) ($m.labels | default dict) (.context.Values.prometheusSelectorLabels | default dict) (.extraLabels | default dict)) -}}
{{- toYaml $m -}}
{{- end -}}

{{/* Relabelings every endpoint gets: the platform component and the exporter that serves the metrics
(the alert rules select on them). Usage: include "langflow-monitoring.relabelings" (dict "component" "ide" "exporter" "langflow") */}}
{{- define "langflow-monitoring.relabelings" -}}
relabelings:
  - targetLabel: component
    replacement: {{ .component }}
  - targetLabel: exporter
    replacement: {{ .exporter }}
{{- end -}}

{{/* Pod selector of a platform component: the library's selector labels for another component. */}}
{{- define "langflow-monitoring.componentSelector" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- with .sub }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* The broker type (global.broker.type, default rabbitmq) and vector store type (default qdrant). */}}
{{- define "langflow-monitoring.brokerType" -}}
{{- ((.Values.global).broker).type | default "rabbitmq" -}}
{{- end -}}
{{- define "langflow-monitoring.vectorstoreType" -}}
{{- ((.Values.global).vectorstore).type | default "qdrant" -}}
{{- end -}}

{{/* Qdrant API key Secret name. */}}
{{- define "langflow-monitoring.qdrantSecret" -}}
{{- .Values.scrape.qdrant.apiKeySecret | default ((.Values.global).vectorstore).existingSecret | default (include "langflow-common.componentFullname" (dict "context" . "component" "vectorstore-credentials")) -}}
{{- end -}}

{{/* Enabled receivers, in a fixed order: list of names. */}}
{{- define "langflow-monitoring.receivers" -}}
{{- $out := list -}}
{{- range $name := list "slack" "email" "pagerduty" "webhook" -}}
{{- if (index $.Values.alertmanager.receivers $name).enabled -}}{{- $out = append $out $name -}}{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Cross-field checks of the receivers: each enabled receiver names where its credentials are. */}}
{{- define "langflow-monitoring.validateReceivers" -}}
{{- $r := .Values.alertmanager.receivers -}}
{{- if $r.slack.enabled -}}
{{- include "langflow-common.validate.required" (dict "value" $r.slack.existingSecret "key" "monitoring.alertmanager.receivers.slack.existingSecret" "why" "the Slack webhook URL comes from a Secret") -}}
{{- end -}}
{{- if $r.pagerduty.enabled -}}
{{- include "langflow-common.validate.required" (dict "value" $r.pagerduty.existingSecret "key" "monitoring.alertmanager.receivers.pagerduty.existingSecret" "why" "the routing key comes from a Secret") -}}
{{- end -}}
{{- if $r.email.enabled -}}
{{- include "langflow-common.validate.required" (dict "value" $r.email.to "key" "monitoring.alertmanager.receivers.email.to") -}}
{{- include "langflow-common.validate.required" (dict "value" $r.email.from "key" "monitoring.alertmanager.receivers.email.from") -}}
{{- include "langflow-common.validate.required" (dict "value" $r.email.smarthost "key" "monitoring.alertmanager.receivers.email.smarthost") -}}
{{- if $r.email.authUsername -}}
{{- include "langflow-common.validate.required" (dict "value" $r.email.existingSecret "key" "monitoring.alertmanager.receivers.email.existingSecret" "why" "the SMTP password comes from a Secret") -}}
{{- end -}}
{{- end -}}
{{- if $r.webhook.enabled -}}
{{- include "langflow-common.validate.required" (dict "value" (or $r.webhook.url $r.webhook.existingSecret) "key" "monitoring.alertmanager.receivers.webhook.url or .existingSecret") -}}
{{- end -}}
{{- end -}}

{{/* Severity matcher value of a receiver: "critical|warning". */}}
{{- define "langflow-monitoring.severities" -}}
{{- join "|" .severities -}}
{{- end -}}

{{/* Loki push URL: logs.lokiURL, or the bundled Loki, or the grafana/loki chart's gateway in namespace loki. */}}
{{- define "langflow-monitoring.lokiURL" -}}
{{- if .Values.logs.lokiURL -}}
{{- .Values.logs.lokiURL -}}
{{- else if eq .Values.mode "bundled" -}}
{{- printf "http://%s.%s.svc:3100/loki/api/v1/push" (include "langflow-common.suffixed" (dict "context" . "suffix" "loki")) (include "langflow-common.namespace" .) -}}
{{- else -}}
http://loki-gateway.loki.svc.cluster.local/loki/api/v1/push
{{- end -}}
{{- end -}}

{{/* One podMetricsEndpoint. Usage: include "langflow-monitoring.endpoint" (dict "context" $ "port" "metrics"
"path" "/metrics" "component" "ide" "exporter" "langflow" ["params" dict] ["honorLabels" true] ["extra" dict]) */}}
{{- define "langflow-monitoring.endpoint" -}}
- port: {{ .port }}
  path: {{ .path | default "/metrics" }}
  interval: {{ .context.Values.scrape.interval }}
  scrapeTimeout: {{ .context.Values.scrape.timeout }}
  {{- with .params }}
  params:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .honorLabels }}
  honorLabels: true
  {{- end }}
  {{- with .extra }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- include "langflow-monitoring.relabelings" . | nindent 2 }}
{{- end -}}

{{/* A PodMonitor. Usage: include "langflow-monitoring.podMonitor" (dict "context" $ "suffix" "ide"
"namespace" "ns" (default: the release's) "selector" (dict ...) "endpoints" (list ...rendered endpoints...)) */}}
{{- define "langflow-monitoring.podMonitor" -}}
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  {{- include "langflow-monitoring.metadata" (dict "context" .context "name" (include "langflow-common.suffixed" (dict "context" .context "suffix" .suffix)) "component" .suffix) | nindent 2 }}
spec:
  namespaceSelector:
    matchNames:
      - {{ .namespace | default .context.Release.Namespace }}
  selector:
    matchLabels:
      {{- toYaml .selector | nindent 6 }}
  podMetricsEndpoints:
    {{- range .endpoints }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* Bundled mode: names and pieces shared by its workloads. */}}
{{- define "langflow-monitoring.bundledName" -}}
{{- include "langflow-common.suffixed" (dict "context" .context "suffix" .part) -}}
{{- end -}}

{{/* Pod security context of a bundled workload running as `uid` (the official image's user). */}}
{{- define "langflow-monitoring.bundledPodSecurity" -}}
{{- $base := include "langflow-common.podSecurityContext" .context | fromYaml -}}
{{- $sc := merge (dict "runAsUser" .uid "runAsGroup" .uid "fsGroup" .uid "runAsNonRoot" true) $base -}}
{{- include "langflow-common.openshift.adapt" (dict "context" .context "securityContext" $sc) -}}
{{- end -}}

{{/* The bundled Prometheus' scrape jobs, mirroring the PodMonitors: list of
{name, component, sub, port, path, exporter, params, auth, cnpg} */}}
{{- define "langflow-monitoring.bundledJobs" -}}
{{- $s := .Values.scrape -}}
{{- $jobs := list -}}
{{- if $s.ide.enabled -}}{{- $jobs = append $jobs (dict "name" "ide" "component" "ide" "port" $s.ide.port "path" $s.ide.path "exporter" "langflow") -}}{{- end -}}
{{- if $s.runtime.enabled -}}
{{- $jobs = append $jobs (dict "name" "runtime" "component" "runtime" "port" $s.runtime.port "path" $s.runtime.path "exporter" "langflow") -}}
{{- $jobs = append $jobs (dict "name" "runtime-worker" "component" "runtime" "port" $s.runtime.workerPort "path" $s.runtime.path "exporter" "worker") -}}
{{- end -}}
{{- if and $s.rabbitmq.enabled (eq (include "langflow-monitoring.brokerType" .) "rabbitmq") -}}
{{- $jobs = append $jobs (dict "name" "rabbitmq" "component" "broker" "sub" "rabbitmq" "port" $s.rabbitmq.port "path" "/metrics" "exporter" "rabbitmq") -}}
{{- $jobs = append $jobs (dict "name" "rabbitmq-detailed" "component" "broker" "sub" "rabbitmq" "port" $s.rabbitmq.port "path" "/metrics/detailed" "exporter" "rabbitmq" "params" (dict "family" $s.rabbitmq.detailedFamilies)) -}}
{{- end -}}
{{- if and $s.redis.enabled (eq (include "langflow-monitoring.brokerType" .) "redis") -}}
{{- $jobs = append $jobs (dict "name" "redis" "component" "broker" "sub" "redis" "port" $s.redis.port "path" "/metrics" "exporter" "redis") -}}
{{- end -}}
{{- if $s.postgresql.enabled -}}
{{- $jobs = append $jobs (dict "name" "database" "component" "database" "port" $s.postgresql.port "path" "/metrics" "exporter" "postgres") -}}
{{- $jobs = append $jobs (dict "name" "cnpg" "component" "database" "port" $s.postgresql.port "path" "/metrics" "exporter" "cnpg" "cnpg" ($s.postgresql.cnpgCluster | default (printf "%s-database-pg" .Release.Name))) -}}
{{- end -}}
{{- if and $s.qdrant.enabled (eq (include "langflow-monitoring.vectorstoreType" .) "qdrant") -}}
{{- $jobs = append $jobs (dict "name" "qdrant" "component" "vectorstore" "sub" "qdrant" "port" $s.qdrant.port "path" "/metrics" "exporter" "qdrant" "auth" true) -}}
{{- end -}}
{{- toJson $jobs -}}
{{- end -}}
