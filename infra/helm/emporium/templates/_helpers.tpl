{{/*
The release's name prefix: "<release>-emporium", or the release name when it already says
emporium.
*/}}
{{- define "emporium.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "emporium.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of everything the release makes. */}}
{{- define "emporium.labels" -}}
helm.sh/chart: {{ include "emporium.chart" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: emporium
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The selector of one component's pods: (dict "root" $ "component" $component). */}}
{{- define "emporium.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component.name }}
{{- end -}}

{{/*
The labels of one component's objects: the release's, its selector, and its NATS identity
(`emporium/service`), which is what the metrics, the Prometheus job and the dashboards call it.
*/}}
{{- define "emporium.componentLabels" -}}
{{ include "emporium.labels" .root }}
app.kubernetes.io/component: {{ .component.name }}
emporium/service: {{ .component.identity }}
{{- end -}}

{{/* The image reference: by digest when one is given, else by tag (the appVersion by default). */}}
{{- define "emporium.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
Every component the release runs, the gateway first, each with its defaults merged in, as YAML
`{components: [...]}`; templates read it with `fromYaml`. A component has:
  name, identity (the NATS user: the name with `-` as `_`), fullname (its objects' name),
  binary, kind (gateway | service), adminPort, publicPort (gateway), store (services),
  and everything of serviceDefaults.
*/}}
{{- define "emporium.components" -}}
{{- $fullname := include "emporium.fullname" . -}}
{{- $components := list -}}
{{- $gateway := mergeOverwrite (deepCopy .Values.serviceDefaults) (omit (deepCopy .Values.gateway) "ingress" "port" "adminPort" "trustForwardedFor" "corsAllowedOrigins" "webDir") -}}
{{- $_ := set $gateway "name" "gateway" -}}
{{- $_ = set $gateway "identity" "gateway" -}}
{{- $_ = set $gateway "binary" "gateway" -}}
{{- $_ = set $gateway "kind" "gateway" -}}
{{- $_ = set $gateway "adminPort" (int .Values.gateway.adminPort) -}}
{{- $_ = set $gateway "publicPort" (int .Values.gateway.port) -}}
{{- $components = append $components $gateway -}}
{{- $seen := dict "gateway" true -}}
{{- range $entry := .Values.services -}}
{{- if not (regexMatch "^[a-z][a-z0-9-]*$" (toString $entry.name)) -}}
{{- fail (printf "services: %q is not a service name ([a-z][a-z0-9-]*)" (toString $entry.name)) -}}
{{- end -}}
{{- if hasKey $seen $entry.name -}}
{{- fail (printf "services: %q is listed twice" $entry.name) -}}
{{- end -}}
{{- $_ := set $seen $entry.name true -}}
{{- $override := get $.Values.serviceOverrides $entry.name | default dict -}}
{{- $component := mergeOverwrite (deepCopy $.Values.serviceDefaults) (deepCopy $entry) (deepCopy $override) -}}
{{- $_ = set $component "identity" (replace "-" "_" $entry.name) -}}
{{- $_ = set $component "binary" (printf "%s-service" $entry.name) -}}
{{- $_ = set $component "kind" "service" -}}
{{- $_ = set $component "adminPort" (int $entry.adminPort) -}}
{{- $components = append $components $component -}}
{{- end -}}
{{- range $name, $_ := .Values.serviceOverrides -}}
{{- if not (hasKey $seen $name) -}}
{{- fail (printf "serviceOverrides: %q is not a service of the list" $name) -}}
{{- end -}}
{{- end -}}
{{- range $component := $components -}}
{{- $_ := set $component "fullname" (printf "%s-%s" $fullname $component.name | trunc 63 | trimSuffix "-") -}}
{{- if lt (int $component.autoscaling.maxReplicas) (int $component.replicas) -}}
{{- fail (printf "%s: autoscaling.maxReplicas (%v) is below replicas (%v)" $component.name $component.autoscaling.maxReplicas $component.replicas) -}}
{{- end -}}
{{- end -}}
{{- dict "components" $components | toYaml -}}
{{- end -}}

{{/*
The egress rules of one component: (dict "root" $ "component" $component). DNS and NATS for
all; Redis for all (REDIS_URL is given to every process, as docker-compose does); the store of
each service; the OTLP collector when traces are exported; the component's own extra rules.
*/}}
{{- define "emporium.egress" -}}
{{- $root := .root -}}
{{- $egress := $root.Values.networkPolicy.egress -}}
{{- $names := list "dns" "nats" "redis" -}}
{{- if eq .component.kind "service" -}}
{{- if and (eq .component.store "mongo") $root.Values.mongodb.existingSecret -}}
{{- $names = append $names "mongodb" -}}
{{- else if ne .component.store "redis" -}}
{{- $names = append $names "postgres" -}}
{{- end -}}
{{- end -}}
{{- if $root.Values.otel.endpoint -}}
{{- $names = append $names "otel" -}}
{{- end -}}
{{- $rules := list -}}
{{- range $name := $names -}}
{{- $rule := get $egress $name | default dict -}}
{{- $allowed := dict "ports" (required (printf "networkPolicy.egress.%s.ports is required" $name) $rule.ports) -}}
{{- with $rule.to -}}
{{- $_ := set $allowed "to" . -}}
{{- end -}}
{{- $rules = append $rules $allowed -}}
{{- end -}}
{{- $rules = concat $rules (.component.extraEgress | default list) -}}
{{- toYaml $rules -}}
{{- end -}}
