# Stand-in for redis:<version>-bookworm: Debian's redis-server, laid out like the official image
# (user redis 999:999, /data owned by it, port 6379), so compose.yaml's user/command work on both.
ARG BASE=flotilla-offline/debian:bookworm
FROM ${BASE}
RUN groupadd -r -g 999 redis && useradd -r -g redis -u 999 -d /data redis \
 && apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
WORKDIR /data
VOLUME /data
EXPOSE 6379
CMD ["redis-server"]
