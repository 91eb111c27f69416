{{/* global.broker with defaults: queue, deadLetterQueue, vhost, existingSecret, type. */}}
{{- define "langflow-broker.queue" -}}{{ ((.Values.global).broker).queue | default "langflow.flow-runs" }}{{- end -}}
{{- define "langflow-broker.deadLetterQueue" -}}{{ ((.Values.global).broker).deadLetterQueue | default "langflow.flow-runs.dlq" }}{{- end -}}
{{- define "langflow-broker.vhost" -}}{{ ((.Values.global).broker).vhost | default "/" }}{{- end -}}
{{- define "langflow-broker.username" -}}{{ ((.Values.global).broker).user | default "langflow" }}{{- end -}}

{{/* The credentials Secret: global.broker.existingSecret or "<release>-broker-credentials". */}}
{{- define "langflow-broker.secretName" -}}
{{- ((.Values.global).broker).existingSecret | default (include "langflow-common.suffixed" (dict "context" . "suffix" "credentials")) -}}
{{- end -}}

{{/* Fully qualified in-cluster name of a Service of this release. */}}
{{- define "langflow-broker.fqdn" -}}
{{- printf "%s.%s.svc.%s" .name (include "langflow-common.namespace" .context) .context.Values.clusterDomain -}}
{{- end -}}

{{- define "langflow-broker.storageClass" -}}
{{- .Values.persistence.storageClass | default ((.Values.global).storageClass) | default "" -}}
{{- end -}}

{{/* Redis names. */}}
{{- define "langflow-broker.redisName" -}}{{ include "langflow-common.suffixed" (dict "context" . "suffix" "redis") }}{{- end -}}
{{- define "langflow-broker.sentinelName" -}}{{ include "langflow-common.suffixed" (dict "context" . "suffix" "sentinel") }}{{- end -}}
{{/* Stable DNS name of Redis data node N (through its headless Service). */}}
{{- define "langflow-broker.redisHost" -}}
{{- $ctx := .context -}}
{{- printf "%s-%d.%s" (include "langflow-broker.redisName" $ctx) (int .ordinal) (include "langflow-broker.fqdn" (dict "context" $ctx "name" (printf "%s-headless" (include "langflow-broker.redisName" $ctx)))) -}}
{{- end -}}
{{- define "langflow-broker.sentinelHost" -}}
{{- $ctx := .context -}}
{{- printf "%s-%d.%s" (include "langflow-broker.sentinelName" $ctx) (int .ordinal) (include "langflow-broker.fqdn" (dict "context" $ctx "name" (printf "%s-headless" (include "langflow-broker.sentinelName" $ctx)))) -}}
{{- end -}}

{{- define "langflow-broker.validate" -}}
{{- $type := ((.Values.global).broker).type | default "rabbitmq" -}}
{{- if and (eq .Values.mode "rabbitmq") (ne $type "rabbitmq") -}}
{{- fail (printf "broker.mode is rabbitmq but global.broker.type is %q: set global.broker.type: rabbitmq so the apps connect with AMQP" $type) -}}
{{- end -}}
{{- if and (eq .Values.mode "redis") (ne $type "redis") -}}
{{- fail (printf "broker.mode is redis but global.broker.type is %q: set global.broker.type: redis" $type) -}}
{{- end -}}
{{- if and .Values.persistence.existingClaim (gt (int .Values.replicas) 1) -}}
{{- fail (printf "broker.persistence.existingClaim mounts one PVC: it needs broker.replicas 1 (got %d; each node needs its own volume)" (int .Values.replicas)) -}}
{{- end -}}
{{- if and (eq .Values.mode "redis") (lt (int .Values.redis.sentinel.replicas) (int .Values.redis.sentinel.quorum)) -}}
{{- fail "broker.redis.sentinel.quorum must not be greater than broker.redis.sentinel.replicas" -}}
{{- end -}}
{{- if eq .Values.mode "rabbitmq" -}}
{{- $names := list (include "langflow-broker.username" .) .Values.rabbitmq.users.monitoring.username .Values.rabbitmq.users.admin.username -}}
{{- if ne (len (uniq $names)) 3 -}}
{{- fail (printf "global.broker.user, broker.rabbitmq.users.monitoring.username and broker.rabbitmq.users.admin.username must be three different users (got %s): each has its own rights" (join ", " $names)) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.mode "external") (ne $type "sqs") (not ((.Values.global).broker).existingSecret) -}}
{{- fail "global.broker.existingSecret is required when broker.mode is external (rabbitmq/redis): the apps read username/password/URLs from it" -}}
{{- end -}}
{{- end -}}
