# syntax=docker/dockerfile:1
#
# mcp-gate container image.
#   docker build -t mcp-gate .
#   docker run --rm --read-only -p 8080:8080 \
#     -e UPSTREAM_URL=... -e RESOURCE_URI=... -e AUTHORIZATION_SERVER=... mcp-gate
#
# Stage 1 builds a release binary; stage 2 is distroless (glibc, CA certificates, no
# shell, no package manager) running as the unprivileged `nonroot` user. The gate
# writes nothing to disk, so the container runs with a read-only root filesystem.

FROM rust:1-bookworm AS builder
WORKDIR /build
# The whole context, minus what .dockerignore leaves out (target/, .git, e2e/, ...).
COPY . .
# Cache mounts keep the crate registry and compiled dependencies between builds.
# jsonwebtoken's aws-lc-rs backend compiles C code; the builder's gcc suffices.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin mcp-gate \
 && install -D -m 0755 target/release/mcp-gate /out/mcp-gate

# Debian 12 on both sides: the binary links against the same glibc it was built with.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="mcp-gate" \
      org.opencontainers.image.description="Authentication gate for MCP servers: RFC 9728 metadata, Bearer JWT checks, streaming reverse proxy" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/mcp-gate /mcp-gate
# 65532:65532 is `nonroot:nonroot` in distroless. Numeric, so that Kubernetes'
# runAsNonRoot can verify it without an explicit runAsUser.
USER 65532:65532
EXPOSE 8080
# Exec form: there is no shell in this image. `mcp-gate healthcheck` asks the running
# gate's liveness endpoint and exits 0 or 1.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/mcp-gate", "healthcheck"]
ENTRYPOINT ["/mcp-gate"]
