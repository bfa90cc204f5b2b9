# Stand-in for nginx:<version>-bookworm: Debian's nginx at /usr/sbin/nginx, with sh and bash, like the
# official image; compose.yaml's chroma-gate brings its own config, so the package's default site is
# never read.
ARG BASE=flotilla-offline/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 80
CMD ["nginx", "-g", "daemon off;"]
