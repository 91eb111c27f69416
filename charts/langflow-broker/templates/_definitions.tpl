{{/*
RabbitMQ definitions (imported at boot): the vhost, the application user, the flow-run queue as a quorum
queue dead-lettering (at-least-once) through the default exchange into the dead-letter queue (also quorum),
and a policy with the delivery limit. Usage: include "langflow-broker.definitions" (dict "context" $ "user" u "password" p)
*/}}
{{- define "langflow-broker.definitions" -}}
{{- $ctx := .context -}}
{{- $vhost := include "langflow-broker.vhost" $ctx -}}
{{- $q := include "langflow-broker.queue" $ctx -}}
{{- $dlq := include "langflow-broker.deadLetterQueue" $ctx -}}
{{- $qargs := dict "x-queue-type" "quorum" "x-dead-letter-exchange" "" "x-dead-letter-routing-key" $dlq -}}
{{- $policy := dict "delivery-limit" (int $ctx.Values.rabbitmq.deliveryLimit) "dead-letter-strategy" "at-least-once" "overflow" "reject-publish" -}}
{{- $defs := dict
  "users" (list (dict "name" .user "password" .password "tags" "administrator"))
  "vhosts" (list (dict "name" $vhost))
  "permissions" (list (dict "user" .user "vhost" $vhost "configure" ".*" "write" ".*" "read" ".*"))
  "queues" (list
    (dict "name" $q "vhost" $vhost "durable" true "auto_delete" false "arguments" $qargs)
    (dict "name" $dlq "vhost" $vhost "durable" true "auto_delete" false "arguments" (dict "x-queue-type" "quorum")))
  "policies" (list (dict "vhost" $vhost "name" "langflow-flow-runs" "pattern" (printf "^%s$" (regexQuoteMeta $q)) "apply-to" "queues" "priority" 10 "definition" $policy))
  "exchanges" (list)
  "bindings" (list)
-}}
{{- toPrettyJson $defs -}}
{{- end -}}
