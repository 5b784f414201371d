# syntax=docker/dockerfile:1
#
# One image with every Emporium binary: the gateway and each service. docker-compose.yml
# (and later the Helm chart) picks the binary per container with its command, e.g.
# `docker run emporium gateway` or `docker run emporium product-service --seed-demo-catalog`.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The caches keep downloaded crates and compiled dependencies between builds; the binaries are
# copied out in the same step because a cache mount is not part of the image.
RUN --mount=type=cache,id=emporium-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=emporium-target,target=/src/target \
    cargo build --release --locked --workspace --bins --exclude xtask \
    && mkdir -p /out \
    && find target/release -maxdepth 1 -type f -executable -exec cp {} /out/ \;

FROM debian:bookworm-slim AS runtime
# ca-certificates for TLS to managed services and trace collectors. No curl: health checks
# use the image's own `healthcheck` binary (pkg/telemetry), so there is no general-purpose
# HTTP client in the image for an intruder to use.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin emporium \
    # docker-compose's NATS credentials volume is mounted here: a new volume takes this
    # owner, so nats-credentials (running as emporium) can write the keys.
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/emporium/nats-credentials
COPY --from=builder /out/ /usr/local/bin/
USER 10001:10001
ENV LOG_FORMAT=json
# 8080: the gateway's HTTP port; 9100: its admin port (metrics, docs, health); 9101 and up:
# the services' admin ports (health, metrics).
EXPOSE 8080 9100 9101
# Each container sets ADMIN_PORT (or passes the URL) for its own admin port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["healthcheck"]
CMD ["gateway"]
