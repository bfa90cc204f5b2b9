# Stand-in for node:<version>-bookworm-slim: a Debian 12 minbase root with node and npm in /usr/local.
# Built by scripts/offline-images; the context holds node, npm.tgz and the host's CA bundle.
ARG BASE=flotilla-offline/debian:bookworm
FROM ${BASE}
ARG NODE_VERSION
ENV NODE_VERSION=${NODE_VERSION}
# The CA bundle is the one given to offline-images: behind a TLS-intercepting proxy it carries the
# proxy's CA, so npm/pnpm in build stages reach the registry.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY node /usr/local/bin/node
COPY npm.tgz /tmp/npm.tgz
RUN mkdir -p /usr/local/lib/node_modules/npm \
 && tar -xzf /tmp/npm.tgz -C /usr/local/lib/node_modules/npm --strip-components=1 \
 && rm /tmp/npm.tgz \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && (groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node || true) \
 && node --version && npm --version
CMD ["node"]
