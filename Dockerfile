# Airtruct in one image: the console built with Node.js, the binary with Rust (it embeds the built-in processors,
# wasm components built on the way), run on Debian slim as a non-root user with its data in the volume /data.
#
#   docker build -t airtruct .
#   docker run -p 8080:8080 -v airtruct-data:/data airtruct          # standalone on SQLite, console on :8080
#
# docker-compose.yml runs a coordinator on PostgreSQL and two workers. On a machine without a registry,
# docker/local-base-images makes the base images named here from local parts.

FROM node:20-bookworm-slim AS console
WORKDIR /src/ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui/ ./
RUN npm run build

FROM rust:1.95-bookworm AS build
# clang and llvm-ar build VRL's C parts for the wasm guests; cmake and the headers build librdkafka.
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      clang llvm cmake pkg-config libcurl4-openssl-dev zlib1g-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin airtruct \
    && install -m 0755 target/release/airtruct /usr/local/bin/airtruct \
    && rm -rf target guests/target

FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin airtruct \
    && mkdir -p /data && chown airtruct:airtruct /data
COPY --from=build /usr/local/bin/airtruct /usr/local/bin/airtruct
COPY --from=console /src/ui/dist /usr/share/airtruct/console
USER airtruct
WORKDIR /data
VOLUME /data
ENV AIRTRUCT_LISTEN=0.0.0.0:8080 \
    AIRTRUCT_DATA_DIR=/data \
    AIRTRUCT_CONSOLE_DIR=/usr/share/airtruct/console
EXPOSE 8080
# A coordinator or standalone answers /healthz; a worker has no port of its own (compose turns this off there).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${AIRTRUCT_LISTEN##*:}/healthz" >/dev/null || exit 1
ENTRYPOINT ["airtruct"]
CMD ["standalone"]
