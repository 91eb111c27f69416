{{/*
Generated secrets: passwords and keys the user did not bring (no existingSecret), made once and never rotated.
Two ways, by global.generatedSecrets.mode:

- "job" (the umbrella's default): the chart renders no Secret, only its spec (a hook ConfigMap labelled
  langflow-platform.dev/secret-spec=<release>, key spec.json, no secret material). The umbrella's secret
  generator Job (pre-install/pre-upgrade hook) creates each Secret that is missing and adds keys that are missing,
  never changing a stored value. Every render of the same values is byte-identical, so GitOps renderers (Argo CD,
  `helm template | kubectl apply`) rotate nothing, and the Secrets, owned by no release, outlive uninstalls.
- "helm" (a component chart installed on its own, where no generator runs): the chart renders the Secret; on an
  upgrade the value already stored is reused (lookup), on a first install a random one is made. Under
  `helm template` (no cluster) every render makes new values: use existingSecret there.

A key is one of: (dict "key" k "length" n) random alphanumeric of n characters; (dict "key" k "value" v) a fixed
value; (dict "key" k "template" t) text in which @@other-key@@ stands for another key's value (URLs, JSON files).
Usage: include "langflow-common.generatedSecret" (dict "context" $ "name" "<secret>" "component" "broker" "type" "Opaque" "keys" (list (dict "key" "password" "length" 32) (dict "key" "url" "template" "amqp://u:@@password@@@host")))
*/}}
{{- define "langflow-common.generatedSecret" -}}
{{- $ctx := .context -}}
{{- $ns := include "langflow-common.namespace" $ctx -}}
{{- $type := .type | default "Opaque" -}}
{{- $labels := include "langflow-common.labels" (dict "context" $ctx "component" .component) | fromYaml -}}
{{- if eq (include "langflow-common.generatedSecrets.mode" $ctx) "job" -}}
{{- $spec := dict "name" .name "type" $type "labels" $labels "keys" .keys -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ printf "%s-spec" .name | trunc 63 | trimSuffix "-" }}
  namespace: {{ $ns }}
  labels:
    {{- toYaml $labels | nindent 4 }}
    langflow-platform.dev/secret-spec: {{ $ctx.Release.Name }}
  annotations:
    {{- include "langflow-common.generatedSecrets.hookAnnotations" (dict "weight" "-20") | nindent 4 }}
data:
  spec.json: {{ toJson $spec | quote }}
{{- else -}}
{{- $existing := (lookup "v1" "Secret" $ns .name).data | default dict -}}
{{- $plain := dict -}}
{{- range .keys -}}
{{- if hasKey $existing .key -}}
{{- $_ := set $plain .key (index $existing .key | b64dec) -}}
{{- else if hasKey . "value" -}}
{{- $_ := set $plain .key (toString .value) -}}
{{- else if hasKey . "length" -}}
{{- $_ := set $plain .key (randAlphaNum (int .length)) -}}
{{- end -}}
{{- end -}}
{{- range .keys -}}
{{- if hasKey . "template" -}}
{{- $text := .template -}}
{{- range $k, $v := $plain -}}
{{- $text = replace (printf "@@%s@@" $k) $v $text -}}
{{- end -}}
{{- $_ := set $plain .key $text -}}
{{- end -}}
{{- end -}}
apiVersion: v1
kind: Secret
type: {{ $type }}
metadata:
  name: {{ .name }}
  namespace: {{ $ns }}
  labels:
    {{- toYaml $labels | nindent 4 }}
  annotations:
    helm.sh/resource-policy: keep
data:
  {{- range .keys }}
  {{ .key }}: {{ index $plain .key | b64enc }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/* "job" or "helm": global.generatedSecrets.mode, "helm" when no umbrella sets it. */}}
{{- define "langflow-common.generatedSecrets.mode" -}}
{{- $mode := ((.Values.global).generatedSecrets).mode | default "helm" -}}
{{- if not (has $mode (list "job" "helm")) -}}
{{- fail (printf "global.generatedSecrets.mode must be job or helm (got %q)" $mode) -}}
{{- end -}}
{{- $mode -}}
{{- end -}}

{{/* Hook annotations of the secret generator's objects (weight -20: specs and RBAC; -10: the Job). Under Argo CD
these map to PreSync hooks. Usage: include "langflow-common.generatedSecrets.hookAnnotations" (dict "weight" "-20") */}}
{{- define "langflow-common.generatedSecrets.hookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}

{{/* Annotations that keep an object (a data PVC) on uninstall. Usage: include "langflow-common.keepAnnotations" . | fromYaml */}}
{{- define "langflow-common.keepAnnotations" -}}
helm.sh/resource-policy: keep
{{- end -}}
