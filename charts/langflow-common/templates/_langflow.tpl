{{/*
Langflow container settings shared by the IDE and the runtime (Langflow 1.13: settings are LANGFLOW_<FIELD>).
Reads the chart's .Values.langflow {port, logLevel, logFormat, autoLogin, superuser, corsOrigins, doNotTrack, workers,
metrics {enabled, port}, extraEnv} and the connections from global.* (see _connections.tpl). With a Redis
broker, Langflow's cache and job queue use it (LANGFLOW_CACHE_TYPE=redis + LANGFLOW_REDIS_URL on db 0,
LANGFLOW_JOB_QUEUE_TYPE=redis + LANGFLOW_REDIS_QUEUE_URL on db 1: the job queue does not read LANGFLOW_REDIS_URL).

Usage: include "langflow-common.langflow.env" (dict "context" $ "secret" "<Secret with secret-key, superuser-password>"
                                                  "backendOnly" false "dataDir" "/app/data" "extra" (list ...))
*/}}
{{- define "langflow-common.langflow.env" -}}
{{- $ctx := .context -}}
{{- $lf := $ctx.Values.langflow -}}
{{- $b := include "langflow-common.connections.broker" $ctx | fromYaml -}}
{{- $dataDir := .dataDir | default "/app/data" -}}
{{- if and (gt (int ($lf.workers | default 1)) 1) (ne $b.type "redis") -}}
{{- fail (printf "langflow.workers (%d) > 1 needs global.broker.type=redis: Langflow 1.13 refuses several workers without its Redis job queue" (int $lf.workers)) -}}
{{- end -}}
- name: HOME
  value: {{ $dataDir | quote }}
- name: LANGFLOW_CONFIG_DIR
  value: {{ printf "%s/config" $dataDir | quote }}
- name: LANGFLOW_HOST
  value: "0.0.0.0"
- name: LANGFLOW_PORT
  value: {{ $lf.port | quote }}
- name: LANGFLOW_WORKERS
  value: {{ $lf.workers | default 1 | quote }}
- name: LANGFLOW_LOG_LEVEL
  value: {{ $lf.logLevel | quote }}
{{- $logFormat := $lf.logFormat | default "json" }}
{{- if not (has $logFormat (list "json" "text")) }}
{{- fail (printf "langflow.logFormat must be json or text, got %q" $logFormat) }}
{{- end }}
# lfx/log/logger.py configure(): LANGFLOW_LOG_ENV=container renders one JSON object per line (structlog
# JSONRenderer), container_csv plain key=value lines without colours
- name: LANGFLOW_LOG_ENV
  value: {{ ternary "container" "container_csv" (eq $logFormat "json") | quote }}
- name: LANGFLOW_BACKEND_ONLY
  value: {{ .backendOnly | default false | quote }}
- name: LANGFLOW_AUTO_LOGIN
  value: {{ $lf.autoLogin | quote }}
- name: LANGFLOW_SUPERUSER
  value: {{ $lf.superuser | quote }}
- name: LANGFLOW_SUPERUSER_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: superuser-password
- name: LANGFLOW_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: secret-key
- name: LANGFLOW_CUSTOM_COMPONENT_ADMIN_ONLY
  value: {{ $lf.customComponentAdminOnly | default false | quote }}
- name: LANGFLOW_DO_NOT_TRACK
  value: {{ $lf.doNotTrack | quote }}
- name: DO_NOT_TRACK
  value: {{ $lf.doNotTrack | quote }}
- name: LITELLM_LOCAL_MODEL_COST_MAP
  value: "True"
- name: LANGFLOW_PROMETHEUS_ENABLED
  value: {{ $lf.metrics.enabled | quote }}
{{- if $lf.metrics.enabled }}
- name: LANGFLOW_PROMETHEUS_PORT
  value: {{ $lf.metrics.port | quote }}
{{- end }}
{{- with $lf.corsOrigins }}
- name: LANGFLOW_CORS_ORIGINS
  value: {{ join "," . | quote }}
{{- end }}
{{ include "langflow-common.connections.databaseEnv" $ctx }}
{{- if eq $b.type "redis" }}
{{ include "langflow-common.connections.brokerEnv" $ctx }}
- name: LANGFLOW_CACHE_TYPE
  value: redis
- name: LANGFLOW_REDIS_URL
  value: "$(LF_BROKER_URL)"
- name: LANGFLOW_JOB_QUEUE_TYPE
  value: redis
- name: LANGFLOW_REDIS_QUEUE_URL
  value: {{ printf "redis://:$(LF_BROKER_PASSWORD)@%s:%s/1" (include "langflow-common.connections.brokerHost" $ctx) (include "langflow-common.connections.brokerPort" $ctx) | quote }}
{{- end }}
{{ include "langflow-common.connections.vectorstoreEnv" $ctx }}
{{ include "langflow-common.storage.env" (dict "context" $ctx) }}
- name: LANGFLOW_VARIABLES_TO_GET_FROM_ENVIRONMENT
  value: "LF_VECTORSTORE_URL,LF_VECTORSTORE_API_KEY"
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- with $lf.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
