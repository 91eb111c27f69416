{{/* Env shared by the Redis data nodes and the sentinels. Usage: include "langflow-broker.redisEnv" (dict "context" $ "headless" name) */}}
{{- define "langflow-broker.redisEnv" -}}
{{- $ctx := .context -}}
{{- $sentinels := list -}}
{{- range $i := until (int $ctx.Values.redis.sentinel.replicas) -}}
{{- $sentinels = append $sentinels (include "langflow-broker.sentinelHost" (dict "context" $ctx "ordinal" $i)) -}}
{{- end -}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: MY_HOST
  value: "$(POD_NAME).{{ include "langflow-broker.fqdn" (dict "context" $ctx "name" .headless) }}"
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "langflow-broker.secretName" $ctx }}, key: password}
- name: MASTER_SET
  value: {{ $ctx.Values.redis.masterSet | quote }}
- name: SENTINEL_HOSTS
  value: {{ join " " $sentinels | quote }}
- name: DEFAULT_PRIMARY
  value: {{ include "langflow-broker.redisHost" (dict "context" $ctx "ordinal" 0) | quote }}
{{- end -}}
