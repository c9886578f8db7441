{{/* Full name of the release's objects: the release name when it contains the chart's name (zim-operator,
zim-operator-prod), the chart's name when the release name is its first word (zim: never zim-zim-operator), else
RELEASE-zim-operator. */}}
{{- define "zim-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else if hasPrefix (printf "%s-" .Release.Name) .Chart.Name -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Common labels. */}}
{{- define "zim-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The operator's image: image.repository and image.tag, the chart's appVersion when the tag is empty. */}}
{{- define "zim-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{/* Selector labels. */}}
{{- define "zim-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* ServiceAccount name. */}}
{{- define "zim-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "zim-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The default credentials Secret's name, if any. */}}
{{- define "zim-operator.credentialsSecret" -}}
{{- if .Values.credentials.create -}}
{{- printf "%s-credentials" (include "zim-operator.fullname" .) -}}
{{- else -}}
{{- .Values.credentials.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* The rules on ZimRooms, ZimRoomSets, Secrets and events the operator needs in each watched namespace. create
and delete on zimrooms are for the children of ZimRoomSets (the set controller creates them with server-side
apply and deletes those the set no longer declares); zimroomsets/finalizers is what an owner reference with
blockOwnerDeletion (each child's, to its set) needs where the OwnerReferencesPermissionEnforcement admission
plugin runs (OpenShift, for one). */}}
{{- define "zim-operator.watchRules" -}}
- apiGroups: [zim.zego.im]
  resources: [zimrooms]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [zim.zego.im]
  resources: [zimrooms/status]
  verbs: [get, patch]
- apiGroups: [zim.zego.im]
  resources: [zimrooms/finalizers]
  verbs: [update]
- apiGroups: [zim.zego.im]
  resources: [zimroomsets]
  verbs: [get, list, watch]
- apiGroups: [zim.zego.im]
  resources: [zimroomsets/status]
  verbs: [get, patch]
- apiGroups: [zim.zego.im]
  resources: [zimroomsets/finalizers]
  verbs: [update]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{ include "zim-operator.secretRule" (dict "root" . "names" .Values.rbac.secretNames) }}
{{- end -}}

{{/* The rule on Secrets: every Secret with rbac.allSecrets, otherwise only `names` plus the default credentials
Secret; `list` and `watch` are then allowed only for requests naming one of them (a metadata.name field
selector), never for the whole namespace. */}}
{{- define "zim-operator.secretRule" -}}
- apiGroups: [""]
  resources: [secrets]
{{- if not .root.Values.rbac.allSecrets }}
{{- $names := .names }}
{{- with include "zim-operator.credentialsSecret" .root }}
{{- $names = append $names . }}
{{- end }}
  resourceNames: {{ $names | uniq | toJson }}
{{- end }}
  verbs: [get, list, watch]
{{- end -}}

{{/* The Secret names the operator reads (ZIM_SECRET_NAMES): rbac.secretNames plus the default credentials Secret,
comma-separated; empty with rbac.allSecrets. Refuses to render when the operator could read no Secret at all. */}}
{{- define "zim-operator.secretNames" -}}
{{- if not .Values.rbac.allSecrets -}}
{{- $names := .Values.rbac.secretNames -}}
{{- with include "zim-operator.credentialsSecret" . -}}
{{- $names = append $names . -}}
{{- end -}}
{{- if not $names -}}
{{- fail "rbac.secretNames is empty and no default credentials Secret is set (credentials.existingSecret or credentials.create): the operator could read no credentials. List the Secret names your rooms use, or set rbac.allSecrets=true" -}}
{{- end -}}
{{- $names | uniq | join "," -}}
{{- end -}}
{{- end -}}

{{/* The metrics port: metrics.port, or the admin port when it is 0. */}}
{{- define "zim-operator.metricsPort" -}}
{{- if .Values.metrics.port -}}
{{- .Values.metrics.port -}}
{{- else -}}
{{- .Values.admin.port -}}
{{- end -}}
{{- end -}}

{{/* The name of the metrics port in the pod and the Service. */}}
{{- define "zim-operator.metricsPortName" -}}
{{- if .Values.metrics.port -}}metrics{{- else -}}admin{{- end -}}
{{- end -}}

{{/* The mounted CA bundle's path, if any. */}}
{{- define "zim-operator.caFile" -}}
{{- if or .Values.zim.caBundle.configMap .Values.zim.caBundle.secret -}}
/etc/zim-operator/ca/{{ .Values.zim.caBundle.key }}
{{- end -}}
{{- end -}}
