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

{{- /* The namespaces the operator acts in: targetNamespaces and allowedTargetNamespaces, '*' meaning all. */ -}}
{{- define "chaosdemo.targetNamespaces" -}}
{{- concat .Values.targetNamespaces .Values.allowedTargetNamespaces | uniq | toJson -}}
{{- end -}}

{{- /* What the operator does in a namespace whose TidbClusters it may break (a Role there, or a ClusterRole for '*'). */ -}}
{{- define "chaosdemo.targetRules" -}}
# Preflight and every resume read the TidbCluster; nothing of tidb-operator's is ever changed.
- apiGroups: ["pingcap.com"]
  resources: ["tidbclusters"]
  verbs: ["get"]
# pod-delete and pod-kill delete the chosen TiKV pod, always with a uid precondition.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["delete"]
# PD is reached only through the TidbCluster's own PD Service, read first (ExternalName refused).
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get"]
# Events of the cluster's own objects, read as diagnosis evidence.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
# A suite's node-kill step is a ChaosDemo the operator creates: the demo admission policy asks for this verb
# in the target namespace, as it asks any creator of a node-kill demo.
- apiGroups: ["chaosdemo.dev"]
  resources: ["chaosdemos"]
  verbs: ["node-kill"]
# One demo per TidbCluster at a time: a Lease named chaosdemo-<cluster> beside it.
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update", "delete"]
{{- with .Values.canary.credentialSecrets }}
# The SQL canary's credentials: only the Secrets named here (spec.canary.credentialsSecret), read-only.
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson . }}
  verbs: ["get"]
{{- end }}
{{- with .Values.clusterTLS.clientSecrets }}
# A TLS TidbCluster's client certificate (<cluster>-cluster-client-secret): only the Secrets named here.
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson . }}
  verbs: ["get"]
{{- end }}
{{- end -}}
