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

{{/* A map without its null values (keys a user set to null are dropped). */}}
{{- define "causeway.compact" -}}
{{- $out := dict -}}
{{- range $k, $v := . -}}
{{- if not (kindIs "invalid" $v) -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Container security context of every container (values.securityContext). */}}
{{- define "causeway.containerSecurityContext" -}}
{{- include "causeway.compact" .Values.securityContext -}}
{{- end -}}

{{/* Pod security context of every pod (values.podSecurityContext). */}}
{{- define "causeway.podSecurityContext" -}}
{{- include "causeway.compact" .Values.podSecurityContext -}}
{{- end -}}

{{/* `imagePullSecrets:` of a pod (imagePullSecrets plus global.imagePullSecrets), or nothing. */}}
{{- define "causeway.imagePullSecrets" -}}
{{- $global := (.Values.global | default dict).imagePullSecrets | default list -}}
{{- $names := concat (.Values.imagePullSecrets | default list) $global | uniq -}}
{{- with $names -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
An HTTP probe: the chart's handler with the user's timings.
Call with (dict "path" "/healthz" "port" "admin" "timing" $values.probes.liveness).
*/}}
{{- define "causeway.probe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
{{ include "causeway.compact" .timing }}
{{- end -}}

{{/*
Checks a component's extension values against the volumes and environment the
chart sets itself, so that a clash fails at render time with the value's name.
Call with (dict "prefix" "gateway" "values" $g "volumes" (list ...) "mountPaths" (list ...) "env" (list ...)).
*/}}
{{- define "causeway.checkExtras" -}}
{{- $names := .volumes -}}
{{- range $i, $vol := .values.extraVolumes -}}
{{- if has $vol.name $names -}}
{{- fail (printf "%s.extraVolumes[%d]: the volume name %q is taken (the chart's volumes: %s; names must be unique)" $.prefix $i $vol.name (join ", " $.volumes)) -}}
{{- end -}}
{{- $names = append $names $vol.name -}}
{{- end -}}
{{- $paths := .mountPaths -}}
{{- range $i, $m := .values.extraVolumeMounts -}}
{{- if not (has $m.name $names) -}}
{{- fail (printf "%s.extraVolumeMounts[%d]: no volume named %q; add it to %s.extraVolumes" $.prefix $i $m.name $.prefix) -}}
{{- end -}}
{{- if has $m.mountPath $paths -}}
{{- fail (printf "%s.extraVolumeMounts[%d]: the mount path %s is taken (the chart mounts: %s)" $.prefix $i $m.mountPath (join ", " $.mountPaths)) -}}
{{- end -}}
{{- $paths = append $paths $m.mountPath -}}
{{- end -}}
{{- range $i, $e := .values.extraEnv -}}
{{- if has $e.name $.env -}}
{{- fail (printf "%s.extraEnv[%d]: %s is set by the chart" $.prefix $i $e.name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The spec of a PodDisruptionBudget: minAvailable when set, else maxUnavailable.
Fails when minAvailable would leave no pod evictable at the lowest replica
count, because such a budget blocks every node drain.
Call with (dict "prefix" "gateway" "pdb" $pdb "replicas" N "replicasFrom" "gateway.replicas").
*/}}
{{- define "causeway.pdbBudget" -}}
{{- $min := .pdb.minAvailable -}}
{{- if kindIs "invalid" $min -}}
maxUnavailable: {{ .pdb.maxUnavailable | toYaml }}
{{- else -}}
{{- $n := int .replicas -}}
{{- $keep := 0 -}}
{{- if kindIs "string" $min -}}
{{- /* Kubernetes rounds a percentage of pods up. */ -}}
{{- $keep = div (add (mul (int (trimSuffix "%" $min)) $n) 99) 100 -}}
{{- else -}}
{{- $keep = int $min -}}
{{- end -}}
{{- if ge (int $keep) $n -}}
{{- fail (printf "%s.podDisruptionBudget.minAvailable=%v keeps %d of %d pod(s) (%s) up, so no node running one could be drained: lower it, raise %s, or use maxUnavailable" .prefix $min (int $keep) $n .replicasFrom .replicasFrom) -}}
{{- end -}}
minAvailable: {{ $min | toYaml }}
{{- end -}}
{{- end -}}

{{/* Mount paths inside the gateway container. */}}
{{- define "causeway.gateway.paths" -}}
config: /etc/causeway
identity: /var/run/secrets/causeway/identity
spire: /run/spire/sockets
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
{{- else if eq $g.identity.mode "spire" -}}
{{- $_ := set $identity "workloadApiSocket" (printf "unix://%s/%s" $p.spire (required "gateway.identity.spire.socketName is required with gateway.identity.mode=spire" $g.identity.spire.socketName)) -}}
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
{{- $_ := set $cfg "drain" (dict "delay" (printf "%ds" (int $g.drain.delaySeconds)) "timeout" (printf "%ds" (int $g.drain.timeoutSeconds))) -}}
{{- range $section := list "upstream" "limits" "observability" -}}
{{- with (index $g.config $section) -}}
{{- $_ := set $cfg $section . -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
The `agent:` section of the gateway configuration (causeway_agent::AgentConfig):
registration, heartbeat, catalog sync and the Kubernetes MCS controllers.
*/}}
{{- define "causeway.gateway.agentConfig" -}}
{{- $p := include "causeway.gateway.paths" . | fromYaml -}}
{{- $g := .Values.gateway -}}
{{- $lease := dict "enabled" true "name" (printf "%s-agent" (include "causeway.gateway.fullname" .)) "namespace" .Release.Namespace -}}
{{- $egress := printf "%s/%s-egress" .Release.Namespace (include "causeway.gateway.fullname" .) -}}
{{- $k8s := dict "enabled" true "egressPort" (int $g.ports.egress) "egressService" $egress "leaderElection" $lease -}}
{{- with $g.exportSelector -}}
{{- $_ := set $k8s "exportSelector" . -}}
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
