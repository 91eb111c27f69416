{{/*
RabbitMQ definitions (imported at boot): the vhost; three users (the application's: no tags, every right on its
vhost; KEDA's: tag monitoring, no rights; the operators' administrator); the flow-run queue as a quorum queue
dead-lettering (at-least-once) through the default exchange into the dead-letter queue (also quorum), and a
policy with the delivery limit. Passwords are @@key@@ placeholders of the credentials Secret.
Usage: include "langflow-broker.definitions" (dict "context" $)
*/}}
{{- define "langflow-broker.definitions" -}}
{{- $ctx := .context -}}
{{- $users := $ctx.Values.rabbitmq.users -}}
{{- $app := include "langflow-broker.username" $ctx -}}
{{- $vhost := include "langflow-broker.vhost" $ctx -}}
{{- $q := include "langflow-broker.queue" $ctx -}}
{{- $dlq := include "langflow-broker.deadLetterQueue" $ctx -}}
{{- $qargs := dict "x-queue-type" "quorum" "x-dead-letter-exchange" "" "x-dead-letter-routing-key" $dlq -}}
{{- $policy := dict "delivery-limit" (int $ctx.Values.rabbitmq.deliveryLimit) "dead-letter-strategy" "at-least-once" "overflow" "reject-publish" -}}
{{- $defs := dict
  "users" (list
    (dict "name" $app "password" "@@password@@" "tags" "")
    (dict "name" $users.monitoring.username "password" "@@monitoring-password@@" "tags" "monitoring")
    (dict "name" $users.admin.username "password" "@@admin-password@@" "tags" "administrator"))
  "vhosts" (list (dict "name" $vhost))
  "permissions" (list
    (dict "user" $app "vhost" $vhost "configure" ".*" "write" ".*" "read" ".*")
    (dict "user" $users.monitoring.username "vhost" $vhost "configure" "^$" "write" "^$" "read" "^$")
    (dict "user" $users.admin.username "vhost" $vhost "configure" ".*" "write" ".*" "read" ".*"))
  "queues" (list
    (dict "name" $q "vhost" $vhost "durable" true "auto_delete" false "arguments" $qargs)
    (dict "name" $dlq "vhost" $vhost "durable" true "auto_delete" false "arguments" (dict "x-queue-type" "quorum")))
  "policies" (list (dict "vhost" $vhost "name" "langflow-flow-runs" "pattern" (printf "^%s$" (regexQuoteMeta $q)) "apply-to" "queues" "priority" 10 "definition" $policy))
  "exchanges" (list)
  "bindings" (list)
-}}
{{- toPrettyJson $defs -}}
{{- end -}}
