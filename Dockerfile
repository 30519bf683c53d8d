# The landlord operator as a container image: one static binary and the CA certificates it
# needs for S3 over TLS, on `scratch`. Nothing else: no shell, no package manager, no libc.
#
#   docker build -t ghcr.io/landlord-dev/landlord:0.1.0 .   # from source (stage `source`)
#   make image          # a binary built outside, packaged by podman (stage `prebuilt`)
#
# Two ways to fill the image, with the same metadata, user and entrypoint (stage `runtime`):
# - `source` (the default, last stage): compiles a static musl binary in a public Rust image.
#   Building for another architecture runs that compiler under emulation; the release
#   workflow therefore builds on native runners and uses `prebuilt`.
# - `prebuilt`: takes the tree under `linux-$TARGETARCH/` in the build context (`landlord` and
#   `etc/ssl/certs/ca-certificates.crt`), so no base image is pulled (`--target prebuilt`).
#   `make image` and the release workflow use it.

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------------------------
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
# ring and zstd compile C: musl-gcc (musl-tools) compiles it against musl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
# `--no-default-features`: the `dev` feature embeds kube-test for `landlord dev`, which a
# cluster never runs. `--build-arg PROFILE=image` builds faster and a little slower code
# (Cargo.toml's [profile.image]); release is what ships.
ARG PROFILE=release
RUN triple="$(uname -m)-unknown-linux-musl" \
 && cargo build --locked --profile "$PROFILE" --no-default-features --target "$triple" --bin landlord \
 && strip "target/$triple/$PROFILE/landlord" \
 && mkdir -p /rootfs/etc/ssl/certs \
 && cp "target/$triple/$PROFILE/landlord" /rootfs/landlord \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/

# ---------------------------------------------------------------------------------------------
FROM scratch AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="landlord" \
      org.opencontainers.image.description="Kubernetes multi-tenancy operator with an embedded quota engine" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/landlord-dev/landlord" \
      org.opencontainers.image.documentation="https://github.com/landlord-dev/landlord#readme" \
      org.opencontainers.image.base.name="scratch"
# Numeric, so that `runAsNonRoot` can verify it without an /etc/passwd (the chart runs as
# 65532 too: the "nonroot" user of distroless images).
USER 65532:65532
# The metrics and health port, and the quota engine's API.
EXPOSE 8080 8081
ENTRYPOINT ["/landlord"]
CMD ["run"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS prebuilt
ARG TARGETARCH
# One COPY, one layer: the binary and the CA bundle (rustls reads /etc/ssl/certs for S3).
COPY linux-${TARGETARCH}/ /

# ---------------------------------------------------------------------------------------------
FROM runtime AS source
COPY --from=builder /rootfs/ /
