# One image per flotilla service from this one file: `docker build --build-arg PACKAGE=researcher .`
# A new worker needs no new Dockerfile, only a compose service block.
#
# Builds with BuildKit and with the legacy builder alike: no `RUN --mount`, no `# syntax=` line (that
# would make BuildKit pull a frontend image, which an offline machine cannot).
#
# Base images are pinned by tag here; release builds pin digests by passing
# --build-arg NODE_RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot@sha256:... (a digest cannot
# be reproduced by scripts/offline-images, so the default stays a tag).
ARG NODE_BUILD_IMAGE=node:24.21.0-bookworm-slim
ARG NODE_RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot
ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- egress-proxy: Debian's squid, the only way out for the agent services (`--target egress-proxy`) -
# First, so the legacy builder (which builds every stage before its target) builds nothing else for it.
# Its config is written at start from EGRESS_SERVICES / EGRESS_ALLOW_* (compose/egress-proxy/).
FROM ${DEBIAN_IMAGE} AS egress-proxy
# Unpinned for the reason the sandbox stage gives: bookworm's security updates replace versions.
# squidclient: the healthcheck and the per-client counters (mgr:client_list).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends squid squidclient ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY compose/egress-proxy/entrypoint.sh /usr/local/bin/flotilla-egress-proxy
# Debian's proxy user (uid 13) from the start: squid never needs root here (no port below 1024, no
# cache directory), so it never holds privileges it would have to drop.
USER 13:13
EXPOSE 3128
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["squidclient", "-h", "127.0.0.1", "-p", "3128", "mgr:info"]
ENTRYPOINT ["/usr/local/bin/flotilla-egress-proxy"]

# ---- build: install once from the lockfile, compile, then deploy one package with prod deps only ----
FROM ${NODE_BUILD_IMAGE} AS build
ARG PNPM_VERSION=10.34.9
# Behind a TLS-intercepting proxy the build base carries that proxy's CA in the system bundle (see
# scripts/offline-images --ca-bundle); node only adds it to its own roots when told. On a normal machine
# the file may be absent and node merely warns.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    CI=true \
    PNPM_HOME=/pnpm \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
# corepack is not used: it verifies registry signatures, which registries behind a proxy may not serve.
RUN npm install -g "pnpm@${PNPM_VERSION}" && npm cache clean --force
WORKDIR /src

# Dependencies first, keyed only on the lockfile, so source edits reuse this layer (pnpm's Docker guide).
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch

COPY . .
RUN pnpm install --offline --frozen-lockfile

ARG PACKAGE=orchestrator
# tsc -b builds the package and the workspace packages it references. `pnpm deploy` copies it with its
# production dependencies only; --legacy because this workspace does not set inject-workspace-packages.
RUN test -f "packages/${PACKAGE}/package.json" \
 && pnpm exec tsc -b "packages/${PACKAGE}/tsconfig.json" \
 && pnpm --filter "@flotilla/${PACKAGE}" deploy --prod --legacy /out \
 && rm -rf /out/src /out/tsconfig.json

# Keep the image near its 180 MB goal (Node alone is ~120 MB): drop what never runs in production.
# - chromadb-js-bindings-*: 53 MB native module behind chromadb's `chroma` CLI (an embedded server);
#   the services only use chromadb's HTTP client, which never loads it.
# - typescript: 20 MB pulled in only as an optional peer for types (valibot, under bull-board), which
#   pnpm satisfies from the workspace's dev dependency; nothing loads it at run time.
# - type declarations, source maps and docs inside node_modules (node reads none of them).
RUN rm -rf /out/node_modules/.pnpm/chromadb-js-bindings-* /out/node_modules/.pnpm/typescript@* \
 && find /out/node_modules -xtype l -delete \
 && find /out/node_modules -type f \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' \
      -o -name '*.map' -o -name '*.md' \) -delete

# ---- sandbox: the code-execution service (`--target sandbox --build-arg PACKAGE=sandbox`) -----------
# Not distroless: each run goes through bubblewrap, prlimit, setpriv and choom and needs python3 and a
# shell (packages/sandbox/README.md, "For the image"). Debian's node base has node; apt adds the rest.
# Kept before the runtime stage so a build without --target still makes the distroless service image.
FROM ${NODE_BUILD_IMAGE} AS sandbox
ARG PACKAGE=sandbox
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/flotilla/flotilla
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="flotilla-${PACKAGE}" \
      org.opencontainers.image.description="flotilla ${PACKAGE} service: runs model-written code in bubblewrap" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.flotilla.package="${PACKAGE}"
# Versions are not pinned: the base tag fixes the Debian release (bookworm), whose point releases and
# security updates replace package versions, so a pin would break the build the day a fix lands.
# Runs use Debian's nodejs (18), not the base image's Node 24: Node 24's V8 reserves more than 512 MiB
# of address space at start ("Failed to reserve virtual memory for CodeRange") and dies under the
# RLIMIT_DATA a run gets (SANDBOX_MAX_MEMORY_MB, 256), while 18 starts in 128 MiB. The service itself
# runs on Node 24.
# npm, npx and corepack go: nothing here installs packages at run time, and a run must not find them.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap util-linux tar dash python3 nodejs \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
COPY --from=build /out /app
WORKDIR /app
# SERVICE_VERSION: a replica's results and registry entry carry its image's version, which is how a
# canary rollout tells the new image's figures from the stable one's.
ENV NODE_ENV=production \
    SERVICE_NAME=${PACKAGE} \
    SERVICE_VERSION=${VERSION} \
    HEALTH_PORT=8080 \
    SANDBOX_NODE=/usr/bin/node
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/node", "/app/node_modules/@flotilla/runtime/dist/health/probe.js"]
# Exec form under `init: true`, as below; the node image's entrypoint script is not wanted.
ENTRYPOINT []
CMD ["/usr/local/bin/node", "--import", "@flotilla/runtime/register", "dist/main.js"]

# ---- runtime: distroless Node 24, no shell, no package manager, non-root ----------------------------
FROM ${NODE_RUNTIME_IMAGE}
ARG PACKAGE=orchestrator
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/flotilla/flotilla
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="flotilla-${PACKAGE}" \
      org.opencontainers.image.description="flotilla ${PACKAGE} service" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.flotilla.package="${PACKAGE}"

# Owned by root, world-readable: the app user can read its code but never rewrite it.
COPY --from=build /out /app
WORKDIR /app
# SERVICE_VERSION: a replica's results and registry entry carry its image's version, which is how a
# canary rollout tells the new image's figures from the stable one's.
ENV NODE_ENV=production \
    SERVICE_NAME=${PACKAGE} \
    SERVICE_VERSION=${VERSION} \
    HEALTH_PORT=8080
USER 65532:65532
EXPOSE 8080

# The probe is a node script (no curl, no shell in this image); it asks the service's health server.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/nodejs/bin/node", "/app/node_modules/@flotilla/runtime/dist/health/probe.js"]

# Exec form: node is PID 1's child under `init: true` and gets SIGTERM directly (no npm/pnpm wrapper).
# --import loads telemetry before any instrumented module.
ENTRYPOINT []
CMD ["/nodejs/bin/node", "--import", "@flotilla/runtime/register", "dist/main.js"]
