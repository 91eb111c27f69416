{{/*
ServiceAccount of a component: one per component, token not mounted unless the component needs the API.
Values: serviceAccount {create, name, annotations (e.g. eks.amazonaws.com/role-arn), automountServiceAccountToken}.
Usage: include "langflow-common.serviceAccount" (dict "context" $ "component" "ide")
*/}}
{{- define "langflow-common.serviceAccount" -}}
{{- $sa := .context.Values.serviceAccount | default dict -}}
{{- if $sa.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  {{- include "langflow-common.metadata" (dict "context" .context "name" (include "langflow-common.serviceAccountName" .context) "component" .component "annotations" $sa.annotations) | nindent 2 }}
automountServiceAccountToken: {{ $sa.automountServiceAccountToken | default false }}
{{- end }}
{{- end -}}
