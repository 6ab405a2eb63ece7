# Build: docker build -t usergraph .
# Run:   docker run -p 8000:8000 -v usergraph-data:/data usergraph
FROM rust:1-slim-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY assets ./assets
RUN cargo build --release --locked && strip target/release/usergraph

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data usergraph \
    && mkdir -p /data/uploads /keys && chown -R usergraph /data /keys
COPY --from=build /src/target/release/usergraph /usr/local/bin/usergraph
USER usergraph
ENV USERGRAPH_LISTEN=0.0.0.0:8000 \
    USERGRAPH_DATA_DIR=/data \
    USERGRAPH_LOG_FORMAT=json
VOLUME /data
EXPOSE 8000
# The binary checks itself: no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["usergraph", "healthcheck"]
ENTRYPOINT ["usergraph"]
CMD ["serve"]
