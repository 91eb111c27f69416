{{/*
NetworkPolicies. The namespace is default-deny (langflow-common.networkPolicy.defaultDeny, rendered once by the
umbrella); each component then allows exactly what it needs with langflow-common.networkPolicy:

  include "langflow-common.networkPolicy" (dict "context" $ "component" "database"
    "clientPorts" (list 5432)                       ingress from the app tier (ide, runtime) on these ports
    "from" (list "ide" "runtime")                   (default: ide and runtime)
    "ingressController" true                        ingress from the ingress controller on clientPorts (IDE)
    "metricsPorts" (list 9187)                      ingress from Prometheus (global.networkPolicy.prometheus, and the
                                                    monitoring chart's bundled one) on these ports
    "peerPorts" (list 5432 8000)                    ingress from the component's own pods (cluster members)
    "to" (list (dict "component" "database" "ports" (list 5432)) ...)   egress to other components
    "externalEgress" true                           egress to global.networkPolicy.externalEgress (LLM APIs, S3)
    "apiServerEgress" true                          egress to the Kubernetes API (peer discovery, operators)
    "fromKeda" true                                 ingress from the KEDA operator on clientPorts (the queue)
    "fromCnpgOperator" (list 8000)                  ingress from the CloudNativePG operator on these ports
    "podSelector" (dict "cnpg.io/cluster" "lf-db")  select other pods than the component's (operator-made pods)
    "ingressRules" (list ...) "egressRules" (list ...)   raw extra rules
    "name" "lf-database-instances"                  object name (default: the fullname)
    "annotations" (dict ...))                       object annotations (e.g. kube-score/ignore for policies
                                                    selecting operator-made pods, which static scanners cannot see)

Peers outside the release come from global.networkPolicy:
  ingressController {namespaceSelector, podSelector, cidrs (load balancers that target pod IPs, e.g. an ALB with
  target-type ip: its subnets' CIDRs)}, prometheus {namespaceSelector, podSelector},
  keda {namespaceSelector, podSelector}, cnpgOperator {namespaceSelector, podSelector},
  dns {namespaceSelector, podSelector, port}, apiServer {cidrs, ports} (the API server's address is
  cluster-specific: narrow the default 0.0.0.0/0 when you know it), externalEgress {cidrs, except, ports}.
Every egress policy allows DNS. Nothing renders when global.networkPolicy.enabled is false (or the chart's
networkPolicy.enabled is false).
*/}}

{{- define "langflow-common.networkPolicy.settings" -}}
{{- $g := ((.context.Values.global).networkPolicy) | default dict -}}
{{- $defaults := dict
  "enabled" true
  "ingressController" (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" "ingress-nginx")) "podSelector" (dict "matchLabels" (dict "app.kubernetes.io/name" "ingress-nginx")))
  "prometheus" (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" "monitoring")) "podSelector" (dict "matchLabels" (dict "app.kubernetes.io/name" "prometheus")))
  "dns" (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" "kube-system")) "podSelector" (dict "matchLabels" (dict "k8s-app" "kube-dns")) "port" 53)
  "keda" (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" "keda")) "podSelector" (dict "matchLabels" (dict "app.kubernetes.io/name" "keda-operator")))
  "cnpgOperator" (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" "cnpg-system")) "podSelector" (dict "matchLabels" (dict "app.kubernetes.io/name" "cloudnative-pg")))
  "apiServer" (dict "cidrs" (list "0.0.0.0/0") "ports" (list 443 6443))
  "externalEgress" (dict "cidrs" (list "0.0.0.0/0") "except" (list "10.0.0.0/8" "172.16.0.0/12" "192.168.0.0/16" "169.254.0.0/16") "ports" (list 443))
-}}
{{- toYaml (merge (deepCopy $g) $defaults) -}}
{{- end -}}

{{- define "langflow-common.networkPolicy.enabled" -}}
{{- $s := include "langflow-common.networkPolicy.settings" . | fromYaml -}}
{{- $local := (.context.Values.networkPolicy | default dict) -}}
{{- if and $s.enabled (ne (toString $local.enabled) "false") }}true{{ end -}}
{{- end -}}

{{/* A peer: pods of another component of this release. */}}
{{- define "langflow-common.networkPolicy.componentPeer" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ .component }}
      app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- end -}}

{{- define "langflow-common.networkPolicy.ports" -}}
{{- range .ports }}
- port: {{ . }}
  protocol: TCP
{{- end }}
{{- end -}}

{{- define "langflow-common.networkPolicy" -}}
{{- if include "langflow-common.networkPolicy.enabled" . -}}
{{- $s := include "langflow-common.networkPolicy.settings" . | fromYaml -}}
{{- $ctx := .context -}}
{{- $local := ($ctx.Values.networkPolicy | default dict) -}}
{{- $from := ternary .from (list "ide" "runtime") (hasKey . "from") -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "langflow-common.metadata" (dict "context" $ctx "name" (.name | default (include "langflow-common.fullname" $ctx)) "component" .component "annotations" .annotations) | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- if .podSelector }}
      {{- toYaml .podSelector | nindent 6 }}
      {{- else }}
      {{- include "langflow-common.selectorLabels" (dict "context" $ctx) | nindent 6 }}
      {{- end }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- if .clientPorts }}
    {{- if .ingressController }}
    - from:
        - namespaceSelector: {{- toYaml $s.ingressController.namespaceSelector | nindent 12 }}
          podSelector: {{- toYaml $s.ingressController.podSelector | nindent 12 }}
        {{- /* a load balancer that targets pod IPs (AWS ALB target-type ip, GKE NEG) connects from its own addresses */}}
        {{- range ($s.ingressController.cidrs | default list) }}
        - ipBlock: {cidr: {{ . }}}
        {{- end }}
      ports: {{- include "langflow-common.networkPolicy.ports" (dict "ports" .clientPorts) | nindent 8 }}
    {{- end }}
    {{- if $from }}
    - from:
        {{- range $from }}
        {{- include "langflow-common.networkPolicy.componentPeer" (dict "context" $ctx "component" .) | nindent 8 }}
        {{- end }}
      ports: {{- include "langflow-common.networkPolicy.ports" (dict "ports" .clientPorts) | nindent 8 }}
    {{- end }}
    {{- end }}
    {{- if and .clientPorts .fromKeda }}
    - from:
        - namespaceSelector: {{- toYaml $s.keda.namespaceSelector | nindent 12 }}
          podSelector: {{- toYaml $s.keda.podSelector | nindent 12 }}
      ports: {{- include "langflow-common.networkPolicy.ports" (dict "ports" .clientPorts) | nindent 8 }}
    {{- end }}
    {{- if .fromCnpgOperator }}
    - from:
        - namespaceSelector: {{- toYaml $s.cnpgOperator.namespaceSelector | nindent 12 }}
          podSelector: {{- toYaml $s.cnpgOperator.podSelector | nindent 12 }}
      ports: {{- include "langflow-common.networkPolicy.ports" (dict "ports" .fromCnpgOperator) | nindent 8 }}
    {{- end }}
    {{- with .ingressRules }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- if .metricsPorts }}
    - from:
        - namespaceSelector: {{- toYaml $s.prometheus.namespaceSelector | nindent 12 }}
          podSelector: {{- toYaml $s.prometheus.podSelector | nindent 12 }}
        {{- /* the monitoring chart's bundled Prometheus, in the release's own namespace */}}
        {{- include "langflow-common.networkPolicy.componentPeer" (dict "context" $ctx "component" "monitoring") | nindent 8 }}
      ports: {{- include "langflow-common.networkPolicy.ports" (dict "ports" .metricsPorts) | nindent 8 }}
    {{- end }}
    {{- if .peerPorts }}
    - from:
        - podSelector:
            matchLabels:
              {{- if .podSelector }}
              {{- toYaml .podSelector | nindent 14 }}
              {{- else }}
              {{- include "langflow-common.selectorLabels" (dict "context" $ctx) | nindent 14 }}
              {{- end }}
      ports: {{- include "langflow-common.networkPolicy.ports" (dict "ports" .peerPorts) | nindent 8 }}
    {{- end }}
    {{- with $local.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    - to:
        - namespaceSelector: {{- toYaml $s.dns.namespaceSelector | nindent 12 }}
          podSelector: {{- toYaml $s.dns.podSelector | nindent 12 }}
      ports:
        - port: {{ $s.dns.port }}
          protocol: UDP
        - port: {{ $s.dns.port }}
          protocol: TCP
    {{- range .to }}
    - to: {{- include "langflow-common.networkPolicy.componentPeer" (dict "context" $ctx "component" .component) | nindent 8 }}
      ports: {{- include "langflow-common.networkPolicy.ports" (dict "ports" .ports) | nindent 8 }}
    {{- end }}
    {{- if .peerPorts }}
    - to:
        - podSelector:
            matchLabels:
              {{- if .podSelector }}
              {{- toYaml .podSelector | nindent 14 }}
              {{- else }}
              {{- include "langflow-common.selectorLabels" (dict "context" $ctx) | nindent 14 }}
              {{- end }}
      ports: {{- include "langflow-common.networkPolicy.ports" (dict "ports" .peerPorts) | nindent 8 }}
    {{- end }}
    {{- if and .apiServerEgress $s.apiServer.cidrs }}
    - to:
        {{- range $s.apiServer.cidrs }}
        - ipBlock: {cidr: {{ . }}}
        {{- end }}
      ports: {{- include "langflow-common.networkPolicy.ports" (dict "ports" $s.apiServer.ports) | nindent 8 }}
    {{- end }}
    {{- if .externalEgress }}
    - to:
        {{- range $s.externalEgress.cidrs }}
        - ipBlock:
            cidr: {{ . }}
            {{- with $s.externalEgress.except }}
            except: {{- toYaml . | nindent 14 }}
            {{- end }}
        {{- end }}
      ports: {{- include "langflow-common.networkPolicy.ports" (dict "ports" $s.externalEgress.ports) | nindent 8 }}
    {{- end }}
    {{- with .egressRules }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $local.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
{{- end -}}

{{/* The namespace's default-deny policy (render once, from the umbrella). */}}
{{- define "langflow-common.networkPolicy.defaultDeny" -}}
{{- if include "langflow-common.networkPolicy.enabled" . -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ printf "%s-default-deny" .context.Release.Name | trunc 63 | trimSuffix "-" }}
  namespace: {{ .context.Release.Namespace }}
  labels:
    app.kubernetes.io/name: {{ .context.Chart.Name }}
    app.kubernetes.io/instance: {{ .context.Release.Name }}
    app.kubernetes.io/managed-by: {{ .context.Release.Service }}
    app.kubernetes.io/part-of: langflow-platform
    helm.sh/chart: {{ include "langflow-common.chart" .context }}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
{{- end -}}
{{- end -}}

{{/*
Egress to a service outside the cluster (a data component in external mode: RDS, ElastiCache, Amazon MQ, a
managed vector store). Rendered by the component that knows the endpoint; it selects the release's pods that
connect to it (the IDE and runtime, plus any component listed in "clients", e.g. the database's backup/restore
Jobs) and allows egress to the endpoint's CIDRs on its port. CIDRs: "cidrs" when given; else host/32 when the host
is an IPv4 address; else the private ranges (a VPC endpoint's address is unknown until it resolves; narrow it
with the component's external.cidrs).
Usage: include "langflow-common.networkPolicy.externalService" (dict "context" $ "component" "database" "host" "db.internal" "port" 5432 "cidrs" (list) "clients" (list "database"))
*/}}
{{- define "langflow-common.networkPolicy.externalService" -}}
{{- if include "langflow-common.networkPolicy.enabled" . -}}
{{- $ctx := .context -}}
{{- $cidrs := .cidrs | default list -}}
{{- if not $cidrs -}}
{{- if regexMatch "^[0-9]{1,3}(\\.[0-9]{1,3}){3}$" (.host | default "") -}}
{{- $cidrs = list (printf "%s/32" .host) -}}
{{- else -}}
{{- $cidrs = list "10.0.0.0/8" "172.16.0.0/12" "192.168.0.0/16" -}}
{{- end -}}
{{- end -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "langflow-common.metadata" (dict "context" $ctx "name" (include "langflow-common.suffixed" (dict "context" $ctx "suffix" "external")) "component" .component) | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/instance: {{ $ctx.Release.Name }}
    matchExpressions:
      - key: app.kubernetes.io/name
        operator: In
        values: {{- toYaml (concat (list "ide" "runtime") (.clients | default list)) | nindent 10 }}
  policyTypes: [Egress]
  egress:
    - to:
        {{- range $cidrs }}
        - ipBlock: {cidr: {{ . }}}
        {{- end }}
      ports:
        - port: {{ int .port }}
          protocol: TCP
{{- end -}}
{{- end -}}
