# syntax=docker/dockerfile:1
# Sluice in a container: a static-stdlib release build on the Swift image, run as uid 10001 on
# debian:bookworm-slim with only the runtime libraries. The build and the file layout are done by
# scripts/container-build.sh, which the tests also run outside Docker (Tests/Integration/test_container.py).
#
#   docker build -t sluice .
#   docker run --rm -p 127.0.0.1:8080:8080 -e SLUICE_API_KEY -e OPENAI_API_KEY sluice
#
# The image holds no secret: the manifest (/etc/sluice/plugins.json, from deploy/container-plugins.json)
# reads every key from the environment at start. Mount your own manifest over it to change models.

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- build --------------------------------------------------------------------------------------
FROM ${SWIFT_IMAGE} AS builder
# Debian's own versions of the -dev packages are the ones to build against: not pinned (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcurl4-openssl-dev libjansson-dev libsystemd-dev libhiredis-dev libmimalloc-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that a source change does not fetch them again.
COPY Package.* ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests/KernelTests ./Tests/KernelTests
COPY Tests/PluginsTests ./Tests/PluginsTests
COPY scripts/container-build.sh ./scripts/
COPY deploy/container-plugins.json ./deploy/
RUN scripts/container-build.sh --scratch-path /src/.build --rootfs /rootfs

# --- run ----------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# What the binary links besides libc and libstdc++ (already in the base image), CA roots for
# HTTPS to providers, and time zones. Versions are Debian 12's (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcurl4 libjansson4 libsystemd0 libhiredis0.14 libmimalloc2.0 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sluice \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin sluice
COPY --from=builder /rootfs/ /
ENV SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/usr/local/libexec/sluice/swift-backtrace-static
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# `sluice healthcheck` and `sluice serve` read plugins.json from here by default.
WORKDIR /etc/sluice
EXPOSE 8080
# SIGTERM drains (server.drain_timeout_s, 30 s): give `docker stop` a longer --time.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/sluice", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["serve", "--config", "/etc/sluice/plugins.json"]
