{{/* Chart name. */}}
{{- define "causeway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name prefix: <release>-causeway unless the release name already contains it. */}}
{{- define "causeway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Names of the components' resources. */}}
{{- define "causeway.gateway.fullname" -}}
{{- printf "%s-gateway" (include "causeway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "causeway.federation.fullname" -}}
{{- printf "%s-federation" (include "causeway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "causeway.etcd.fullname" -}}
{{- printf "%s-etcd" (include "causeway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Common labels; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "causeway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: causeway
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "causeway.selectorLabels" . }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "causeway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "causeway.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The image reference: a digest wins over the tag; `latest` is refused. */}}
{{- define "causeway.image" -}}
{{- $img := .Values.image -}}
{{- if eq $img.tag "latest" -}}
{{- fail "image.tag must be a pinned version, not latest" -}}
{{- end -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository $img.tag -}}
{{- end -}}
{{- end -}}

{{/* The gateway's ServiceAccount name. */}}
{{- define "causeway.gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "causeway.gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The federation token Secret name; fails with a clear message when missing. */}}
{{- define "causeway.tokenSecretName" -}}
{{- $ref := .Values.federation.tokenSecret | default dict -}}
{{- if not $ref.name -}}
{{- fail "federation.tokenSecret.name is required: create a Secret holding this cluster's federation token (kubectl create secret generic causeway-federation-token --from-literal=token=<JWT with scope cluster:<id>>) and set federation.tokenSecret.name" -}}
{{- end -}}
{{- $ref.name -}}
{{- end -}}

{{/* The federation API URL the gateway uses. */}}
{{- define "causeway.federationEndpoint" -}}
{{- if .Values.federation.endpoint -}}
{{- .Values.federation.endpoint -}}
{{- else if .Values.federationApi.enabled -}}
{{- printf "http://%s.%s.svc:%v" (include "causeway.federation.fullname" .) .Release.Namespace .Values.federationApi.service.port -}}
{{- else -}}
{{- fail "federation.endpoint is required: the URL of the federation API (or enable federationApi in this release)" -}}
{{- end -}}
{{- end -}}

{{/* Container security context shared by every Causeway container. */}}
{{- define "causeway.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod security context shared by every Causeway pod. */}}
{{- define "causeway.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Mount paths inside the gateway container. */}}
{{- define "causeway.gateway.paths" -}}
config: /etc/causeway
identity: /var/run/secrets/causeway/identity
token: /var/run/secrets/causeway/federation
federationCa: /etc/causeway/federation-ca
bundles: /etc/causeway/bundles
data: /var/lib/causeway
{{- end -}}

{{/*
The gateway configuration file (docs/gateway-config.md), rendered from values.
Every key here must exist in the gateway's GatewayConfig (unknown keys are
rejected by the binary); e2e/tests/charts.rs parses it with the real parser.
*/}}
{{- define "causeway.gateway.config" -}}
{{- $p := include "causeway.gateway.paths" . | fromYaml -}}
{{- $c := .Values.cluster -}}
{{- $g := .Values.gateway -}}
{{- $cluster := dict "id" (required "cluster.id is required: this cluster's id, an RFC 1123 label such as eu-west-1" $c.id) "trustDomain" (required "cluster.trustDomain is required: this cluster's SPIFFE trust domain, e.g. eu.example.com" $c.trustDomain) "region" ($c.region | default "") "zone" ($c.zone | default "") "jurisdictions" ($c.jurisdictions | default list) -}}
{{- $listeners := dict "egress" (printf "0.0.0.0:%v" $g.ports.egress) "ingress" (printf "0.0.0.0:%v" $g.ports.eastWest) "admin" (printf "0.0.0.0:%v" $g.ports.admin) -}}
{{- $identity := dict "callerJwtTtl" $g.identity.callerJwtTtl "svidTtl" $g.identity.svidTtl -}}
{{- if eq $g.identity.mode "authority" -}}
{{- $_ := set $identity "authorityDir" (printf "%s/authority" $p.data) -}}
{{- else -}}
{{- $_ := set $identity "svidFile" (printf "%s/svid.pem" $p.identity) -}}
{{- $_ := set $identity "keyFile" (printf "%s/key.pem" $p.identity) -}}
{{- $_ := set $identity "bundleFile" (printf "%s/bundle.json" $p.identity) -}}
{{- end -}}
{{- $bundles := dict -}}
{{- range $td, $ref := $g.federatedBundles -}}
{{- $_ := set $bundles $td (printf "%s/%s/bundle.json" $p.bundles $td) -}}
{{- end -}}
{{- $federation := dict "bundles" $bundles -}}
{{- $agent := include "causeway.gateway.agentConfig" . | fromYaml -}}
{{- $cfg := dict "cluster" $cluster "listeners" $listeners "identity" $identity "federation" $federation "agent" $agent -}}
{{- $_ := set $cfg "threads" ($g.config.threads | default 0) -}}
{{- range $section := list "upstream" "limits" "observability" -}}
{{- with (index $g.config $section) -}}
{{- $_ := set $cfg $section . -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
The `agent:` section of the gateway configuration (causeway_gateway::agent::AgentConfig):
registration, heartbeat, catalog sync and the Kubernetes MCS controllers.
*/}}
{{- define "causeway.gateway.agentConfig" -}}
{{- $p := include "causeway.gateway.paths" . | fromYaml -}}
{{- $g := .Values.gateway -}}
{{- $k8s := dict "enabled" true "egressPort" (int $g.ports.egress) -}}
{{- with $g.egressService.clusterIP -}}
{{- $_ := set $k8s "egressAddresses" (list .) -}}
{{- end -}}
{{- $agent := dict "endpoint" (include "causeway.federationEndpoint" .) "tokenFile" (printf "%s/token" $p.token) "snapshotFile" (printf "%s/catalog.json" $p.data) "kubernetes" $k8s -}}
{{- with .Values.cluster.cloud -}}
{{- $_ := set $agent "cloud" . -}}
{{- end -}}
{{- if (.Values.federation.caConfigMap | default dict).name -}}
{{- $_ := set $agent "caFile" (printf "%s/ca.pem" $p.federationCa) -}}
{{- end -}}
{{- with $g.advertisedEndpoints -}}
{{- $_ := set $agent "gatewayEndpoints" . -}}
{{- end -}}
{{- toYaml $agent -}}
{{- end -}}
