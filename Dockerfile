# syntax=docker/dockerfile:1.7
#
# One image with the three Causeway binaries, used by charts/causeway for both
# the gateway and the federation API (the chart picks the binary with
# `command`):
#   /usr/local/bin/causeway-gateway     east-west gateway + cluster agent
#   /usr/local/bin/causeway-federation  federation API server
#   /usr/local/bin/causewayctl          CLI (kubectl exec / debugging)
#
#   docker build -t ghcr.io/causeway-dev/causeway:0.1.0 \
#     --build-arg GIT_COMMIT="$(git rev-parse --short=12 HEAD)" .
#
# GIT_COMMIT becomes the `commit` of `causeway_build_info`, the `gitCommit`
# of the API's `GET /v1/version` and of `causewayctl version`.
#
# The runtime is distroless (glibc, CA certificates, no shell) running as the
# `nonroot` user 65532, matching the chart's securityContext.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
# cmake: Pingora's zlib-ng; protobuf-compiler: the gRPC code of causeway-api.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake protobuf-compiler \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ARG GIT_COMMIT=""
ENV CAUSEWAY_GIT_COMMIT=${GIT_COMMIT}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        -p causeway-gateway -p causeway-federation --bins \
    && mkdir -p /out \
    && cp target/release/causeway-gateway \
          target/release/causeway-federation \
          target/release/causewayctl /out/

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="causeway" \
      org.opencontainers.image.description="Causeway multi-cluster federation gateway: gateway, federation API and CLI" \
      org.opencontainers.image.source="https://github.com/causeway-dev/causeway" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/ /usr/local/bin/
USER 65532:65532
# egress 15001, east-west 15443, gateway admin 15000, federation API 8080.
EXPOSE 15001 15443 15000 8080
ENTRYPOINT ["/usr/local/bin/causeway-gateway"]
