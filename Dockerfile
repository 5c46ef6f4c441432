# syntax=docker/dockerfile:1.7
# The stepup image: both binaries, /usr/local/bin/stepup-sidecar (the default entrypoint)
# and /usr/local/bin/stepup-operator, on distroless (no shell, no package manager), running
# as the nonroot user 65532. The Helm chart (charts/stepup) sets the command per Deployment.
#
#   docker build -t stepup:0.1.0 .
#   docker run --rm stepup:0.1.0 --help
#   docker run --rm --entrypoint /usr/local/bin/stepup-operator stepup:0.1.0 --help
#
# Not built in this project's CI: the machine has no Docker engine. The chart tests
# (operator/tests/chart.rs) check the manifests that run this image, not the image.

# ---- build ------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# BuildKit cache mounts keep the crate registry and the target directory between builds, so
# a rebuild after a source change recompiles only the workspace crates. The target directory
# is a cache mount, so the binaries are copied out of it in the same step.
# TLS is rustls with aws-lc-rs (built by the cc crate; no OpenSSL, no cmake needed).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p stepup-sidecar -p stepup-operator \
 && mkdir -p /out \
 && cp target/release/stepup-sidecar target/release/stepup-operator /out/

# ---- run --------------------------------------------------------------------------------
# cc-debian12: glibc and libgcc, the same Debian release as the builder (bookworm).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/stepup-sidecar /out/stepup-operator /usr/local/bin/
# 65532 is distroless' "nonroot"; numeric, so that runAsNonRoot can verify it.
USER 65532:65532
# gRPC ext_authz, HTTP ext_authz, step-up API, admin (/healthz /readyz /metrics).
EXPOSE 9001 9002 9003 9004
ENTRYPOINT ["/usr/local/bin/stepup-sidecar"]
