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
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $eps = append $eps (printf "http://%s-%d.%s-peer.%s.svc:2379" $name $i $name $.Release.Namespace) -}}
{{- end -}}
{{- else -}}
{{- $eps = .Values.federationApi.externalEtcd.endpoints -}}
{{- end -}}
{{- toJson $eps -}}
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
{{- $tls := $f.externalEtcd.tls -}}
{{- if and (not $.Values.etcd.enabled) $tls.enabled -}}
{{- if not $eps -}}
{{- fail "federationApi.externalEtcd.tls.enabled needs federationApi.externalEtcd.endpoints" -}}
{{- end -}}
{{- if not $tls.secretName -}}
{{- fail "federationApi.externalEtcd.tls.secretName is required with TLS: a Secret with ca.crt (and tls.crt/tls.key for client auth)" -}}
{{- end -}}
{{- $_ := set $store "etcdCa" (printf "%s/ca.crt" $p.etcdTls) -}}
{{- if $tls.clientAuth -}}
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
