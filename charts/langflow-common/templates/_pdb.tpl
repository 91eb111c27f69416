{{/*
PodDisruptionBudget for a component, from {pdb: {enabled, minAvailable | maxUnavailable}}.
Usage: include "langflow-common.pdb" (dict "context" $ "component" "ide")
*/}}
{{- define "langflow-common.pdb" -}}
{{- $pdb := .context.Values.pdb | default dict -}}
{{- if $pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "langflow-common.metadata" (dict "context" .context "name" .name "component" .component) | nindent 2 }}
spec:
  {{- if $pdb.maxUnavailable }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- else }}
  minAvailable: {{ $pdb.minAvailable | default "50%" }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "langflow-common.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}
