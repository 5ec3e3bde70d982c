# syntax=docker/dockerfile:1
#
# ringcast in a container:
#
#   docker build -t ringcast .
#   docker run --rm -p 6379:6379 -p 9379:9379 ringcast
#
# The image reads /etc/ringcast/ringcast.conf: the repository's ringcast.conf
# (every parameter at its default) with four container settings appended
# (listen on every interface, protected mode off, metrics on 9379 for every
# interface). Mount your own file there to replace it, and give flags after
# the image name to override it (`docker run ... ringcast --threads 2`).
# README.md, "Containers", has the details: io_uring under Docker's seccomp
# profile, workers under a CPU limit, another port.

# --- build: the Rust toolchain, a release build of the server ----------------
ARG RUST_IMAGE=rust:1-bookworm
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The registry and target directory are cache mounts (kept between builds on
# this machine, never in the image); the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ringcast-server \
    && install -D -m 0755 target/release/ringcast /out/ringcast

# --- runtime: Debian slim (glibc, and bash for the health check) -------------
FROM debian:bookworm-slim AS runtime
RUN useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin ringcast
COPY --from=build /out/ringcast /usr/local/bin/ringcast
COPY ringcast.conf /etc/ringcast/ringcast.conf
RUN printf '%s\n' '' \
        '# --- Container settings (appended by the Dockerfile) ---' \
        '# Reachable from outside the container: set requirepass or ACL users' \
        '# before publishing the port beyond a trusted network.' \
        'bind 0.0.0.0' \
        'protected-mode no' \
        'metrics-port 9379' \
        'metrics-bind 0.0.0.0' \
        >> /etc/ringcast/ringcast.conf
USER ringcast
# Clients, and the metrics endpoint (/metrics, /healthz, /readyz).
EXPOSE 6379 9379
# Where the health check looks for /healthz: change it with the metrics port.
ENV RINGCAST_METRICS_PORT=9379
# No curl or wget in the slim image: bash's /dev/tcp sends the request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${RINGCAST_METRICS_PORT} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r status <&3 && [[ $status == *' 200 '* ]]"]
# SIGTERM (docker stop) shuts ringcast down cleanly, within a few seconds.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ringcast", "/etc/ringcast/ringcast.conf"]
