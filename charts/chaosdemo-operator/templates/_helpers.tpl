{{- define "chaosdemo.name" -}}chaosdemo-operator{{- end -}}

{{- define "chaosdemo.labels" -}}
app.kubernetes.io/name: {{ include "chaosdemo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "chaosdemo.selector" -}}
app.kubernetes.io/name: {{ include "chaosdemo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
