{{- define "rag-operator.name" -}}rag-operator{{- end -}}

{{- define "rag-operator.fullname" -}}
{{- if contains "rag-operator" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-rag-operator" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "rag-operator.labels" -}}
app.kubernetes.io/name: rag-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "rag-operator.selector" -}}
app.kubernetes.io/name: rag-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- /* The namespaces served, comma separated (empty: every namespace): watchNamespaces, and the
older single watchNamespace. */ -}}
{{- define "rag-operator.watchNamespaces" -}}
{{- $all := .Values.watchNamespaces | default list -}}
{{- with .Values.watchNamespace }}{{ $all = append $all . }}{{ end -}}
{{- $all | uniq | sortAlpha | join "," -}}
{{- end -}}

{{- define "rag-operator.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "rag-operator.fullname" .) .Values.serviceAccount.name }}
{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}
