{{/* Mount paths inside the federation API container. */}}
{{- define "causeway.federation.paths" -}}
config: /etc/causeway
jwt: /var/run/secrets/causeway/jwt
etcdTls: /var/run/secrets/causeway/etcd
data: /var/lib/causeway
{{- end -}}

{{/* etcd endpoints of the federation API: the bundled members or the external list. */}}
{{- define "causeway.federation.etcdEndpoints" -}}
{{- $eps := list -}}
{{- if .Values.etcd.enabled -}}
{{- $name := include "causeway.etcd.fullname" . -}}
{{- $scheme := ternary "https" "http" (.Values.etcd.tls.enabled | default false) -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $eps = append $eps (printf "%s://%s-%d.%s-peer.%s.svc:2379" $scheme $name $i $name $.Release.Namespace) -}}
{{- end -}}
{{- else -}}
{{- $eps = .Values.federationApi.externalEtcd.endpoints -}}
{{- end -}}
{{- toJson $eps -}}
{{- end -}}

{{/*
The Secret with the federation API's etcd client TLS files (ca.crt, tls.crt,
tls.key), or nothing without TLS: the bundled etcd's client Secret, or the
external etcd's.
*/}}
{{- define "causeway.federation.etcdTlsSecret" -}}
{{- if .Values.etcd.enabled -}}
{{- $t := .Values.etcd.tls -}}
{{- if $t.enabled -}}
{{- if not $t.secretName -}}
{{- fail "etcd.tls.secretName is required with etcd.tls.enabled: a Secret with ca.crt, tls.crt and tls.key for the members (docs/deploy.md shows a cert-manager Certificate)" -}}
{{- end -}}
{{- $t.clientSecretName | default $t.secretName -}}
{{- end -}}
{{- else if .Values.federationApi.externalEtcd.tls.enabled -}}
{{- if not .Values.federationApi.externalEtcd.endpoints -}}
{{- fail "federationApi.externalEtcd.tls.enabled needs federationApi.externalEtcd.endpoints" -}}
{{- end -}}
{{- if not .Values.federationApi.externalEtcd.tls.secretName -}}
{{- fail "federationApi.externalEtcd.tls.secretName is required with TLS: a Secret with ca.crt (and tls.crt/tls.key for client auth)" -}}
{{- end -}}
{{- .Values.federationApi.externalEtcd.tls.secretName -}}
{{- end -}}
{{- end -}}

{{/*
The federation API configuration file (ServerConfig in
federation-api/src/server/config.rs). e2e/tests/charts.rs parses it with the
real type.
*/}}
{{- define "causeway.federation.config" -}}
{{- $f := .Values.federationApi -}}
{{- $p := include "causeway.federation.paths" . | fromYaml -}}
{{- $eps := include "causeway.federation.etcdEndpoints" . | fromJsonArray -}}
{{- if not $f.jwt.existingSecret -}}
{{- fail "federationApi.jwt.existingSecret is required: a Secret with the token verification key (public.pem for ES256, secret for HS256)" -}}
{{- end -}}
{{- $store := dict "etcd" $eps -}}
{{- with $f.prefix -}}
{{- $_ := set $store "prefix" . -}}
{{- end -}}
{{- if include "causeway.federation.etcdTlsSecret" . -}}
{{- $_ := set $store "etcdCa" (printf "%s/ca.crt" $p.etcdTls) -}}
{{- if or $.Values.etcd.enabled $f.externalEtcd.tls.clientAuth -}}
{{- $_ := set $store "etcdCert" (printf "%s/tls.crt" $p.etcdTls) -}}
{{- $_ := set $store "etcdKey" (printf "%s/tls.key" $p.etcdTls) -}}
{{- end -}}
{{- end -}}
{{- if not $eps -}}
{{- $_ := set $store "dataDir" $p.data -}}
{{- end -}}
{{- $jwt := dict "algorithm" $f.jwt.algorithm "audience" $f.jwt.audience -}}
{{- if eq $f.jwt.algorithm "ES256" -}}
{{- $_ := set $jwt "publicKeyFile" (printf "%s/public.pem" $p.jwt) -}}
{{- else -}}
{{- $_ := set $jwt "secretFile" (printf "%s/secret" $p.jwt) -}}
{{- end -}}
{{- with $f.jwt.issuer -}}
{{- $_ := set $jwt "issuer" . -}}
{{- end -}}
{{- $cfg := dict "listen" (printf "0.0.0.0:%v" $f.port) "store" $store "jwt" $jwt "heartbeatTtl" $f.heartbeatTtl "maxBodyBytes" (int64 $f.maxBodyBytes) -}}
{{- with $f.staleAfter -}}
{{- $_ := set $cfg "staleAfter" . -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
