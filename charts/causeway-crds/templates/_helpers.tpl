{{/* Labels of every CRD. */}}
{{- define "causeway-crds.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: causeway
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Annotations of every CRD. */}}
{{- define "causeway-crds.annotations" -}}
{{- if .Values.keep -}}
helm.sh/resource-policy: keep
{{- else -}}
{}
{{- end -}}
{{- end -}}
