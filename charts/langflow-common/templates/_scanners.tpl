{{/*
Scanner decisions: the checkov and kube-score findings the charts accept on purpose, each with its reason. They
are annotations on the objects they concern (checkov.io/skipN: ID=reason; kube-score/ignore, with each reason
in kube-score.langflow-platform.dev/<check>), so a user who scans the chart sees the same decisions, and why. A finding that is not a decision is fixed in the chart instead.
Keys: pullPolicy, imageUser, envSecrets, apiToken, singleReplica, bundledSingleReplica, helmTestHook, operatorPods.
Usage: include "langflow-common.scannerAnnotations" (dict "decisions" (list "pullPolicy" "imageUser") "annotations" (dict ...)) | fromYaml
(returns the annotations merged with the decisions'; checkov skips are numbered after the ones already given)
*/}}
{{- define "langflow-common.scannerDecisions" -}}
pullPolicy:
  checkov: [CKV_K8S_15]
  kubeScore: [container-image-pull-policy]
  reason: "imagePullPolicy IfNotPresent is deliberate: images are pinned by tag (latest is refused) or digest, so Always adds registry round-trips and stops restarts during a registry outage; image.pullPolicy changes it"
imageUser:
  checkov: [CKV_K8S_40]
  kubeScore: [container-security-context-user-group-id]
  reason: "the upstream images own their files by their own low UID/GID (langflow 1000, postgres/rabbitmq 999, redis 999, qdrant 1000); the pods run as non-root with no privilege escalation and every capability dropped; podSecurityContext changes the UID"
envSecrets:
  checkov: [CKV_K8S_35]
  reason: "this image reads its credentials only from environment variables; they come from Secrets by secretKeyRef, never as literals"
apiToken:
  checkov: [CKV_K8S_38]
  reason: "this pod calls the Kubernetes API (a namespaced Role of the release grants only what it reads or writes), so it mounts its ServiceAccount token"
singleReplica:
  kubeScore: [deployment-replicas]
  reason: "one IDE replica is what these values ask for (ide.replicaCount 1 without autoscaling, as the dev profile on a laptop cluster)"
bundledSingleReplica:
  kubeScore: [deployment-replicas]
  reason: "the bundled monitoring stack is a one-replica convenience for small clusters; for HA, point the release at your own Prometheus, Loki and Grafana"
helmTestHook:
  checkov: [CKV_K8S_8, CKV_K8S_9]
  kubeScore: [pod-probes]
  reason: "a helm test hook runs once to completion and is no Service backend, so it has no liveness or readiness probe"
operatorPods:
  kubeScore: [networkpolicy-targets-pod]
  reason: "the pods this policy selects (CloudNativePG instances and poolers) are made by the operator at run time, so a static scan sees none"
{{- end -}}

{{- define "langflow-common.scannerAnnotations" -}}
{{- $table := include "langflow-common.scannerDecisions" . | fromYaml -}}
{{- $out := merge (dict) (.annotations | default dict) -}}
{{- $n := 0 -}}
{{- range $k, $_ := $out }}{{ if hasPrefix "checkov.io/skip" $k }}{{ $n = add1 $n }}{{ end }}{{ end -}}
{{- $ignore := list -}}
{{- with (get $out "kube-score/ignore") }}{{ $ignore = splitList "," . }}{{ end -}}
{{- range .decisions -}}
{{- $d := get $table . -}}
{{- if not $d }}{{ fail (printf "langflow-common.scannerAnnotations: unknown decision %q" .) }}{{ end -}}
{{- range $d.checkov -}}
{{- $n = add1 $n -}}
{{- $_ := set $out (printf "checkov.io/skip%d" $n) (printf "%s=%s" . $d.reason) -}}
{{- end -}}
{{- range $d.kubeScore -}}
{{- $ignore = append $ignore . -}}
{{- $_ := set $out (printf "kube-score.langflow-platform.dev/%s" .) $d.reason -}}
{{- end -}}
{{- end -}}
{{- with $ignore }}{{ $_ := set $out "kube-score/ignore" (join "," (uniq .)) }}{{ end -}}
{{- toYaml $out -}}
{{- end -}}
