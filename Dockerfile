# syntax=docker/dockerfile:1
#
# One image with every Emporium binary (the gateway, each service, and the tools they share:
# `healthcheck`, `nats-credentials`) and the built web app the gateway serves.
# docker-compose.yml (and the Helm chart) picks the binary per container with its command,
# e.g. `docker run emporium gateway` or `docker run emporium product-service --seed-demo-catalog`.
#
# Base images are pinned by tag only: their digests could not be looked up where this file was
# written (no registry access). Add them (`FROM image:tag@sha256:...`) when the tags are next
# bumped. `cargo xtask check-infra` runs hadolint over this file (.hadolint.yaml).
#
# Layers: cargo-chef reduces the workspace to its manifests and Cargo.lock (the recipe), and
# the dependencies are compiled from the recipe alone. That layer is rebuilt when a manifest or
# the lock changes, not when a source file does, and a new crate needs no edit here.

# The web app (gateway/web): packages from its package-lock.json, then `npm run build`, which
# also generates the API client from docs/api/openapi.json. No browser is downloaded: the
# browser tests run outside the image.
FROM node:24.11.1-bookworm-slim AS web
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
WORKDIR /src/gateway/web
COPY gateway/web/package.json gateway/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY docs/api/openapi.json /src/docs/api/openapi.json
COPY gateway/web/ ./
RUN npm run build

FROM rust:1.95.0-slim-bookworm AS chef
RUN cargo install --locked cargo-chef@0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Every member's dependencies, xtask's included: cook cannot leave one member out. xtask's own
# dependencies are few, and the ones it shares are built with the same features either way.
RUN cargo chef cook --release --locked --workspace --bins --recipe-path recipe.json
COPY . .
# Every binary but xtask (a developer tool). Cook left a placeholder xtask binary behind, so
# it is left out of the copy by name.
RUN cargo build --release --locked --workspace --bins --exclude xtask \
    && mkdir -p /out \
    && find target/release -maxdepth 1 -type f -executable ! -name xtask -exec cp {} /out/ \;

FROM debian:bookworm-20260824-slim AS runtime
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
# The gateway serves it with `--web-dir /usr/share/emporium/web` (WEB_DIR).
COPY --from=web /src/gateway/web/dist/ /usr/share/emporium/web/
USER 10001:10001
ENV LOG_FORMAT=json
# 8080: the gateway's HTTP port; 9100: its admin port (metrics, docs, health); 9101 and up:
# the services' admin ports (health, metrics).
EXPOSE 8080 9100 9101
# Each container sets ADMIN_PORT (or passes the URL) for its own admin port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["healthcheck"]
CMD ["gateway"]
