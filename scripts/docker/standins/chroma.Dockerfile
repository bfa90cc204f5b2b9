# Stand-in for chromadb/chroma:<version>: PyPI's chromadb (which ships Chroma's Rust server) in a venv,
# with `chroma` on PATH like the official image, data in /data, port 8000.
ARG BASE=flotilla-offline/debian:bookworm
FROM ${BASE}
ARG CHROMADB_VERSION
# Kept apart from /etc/ssl/certs: installing Debian's ca-certificates (python3 pulls it in) rewrites that
# bundle and would drop a proxy CA that the given bundle carries.
COPY ca-certificates.crt /usr/local/share/flotilla/ca-bundle.crt
ENV PIP_CERT=/usr/local/share/flotilla/ca-bundle.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/chroma \
 && /opt/chroma/bin/pip install -q "chromadb==${CHROMADB_VERSION}" \
 && ln -s /opt/chroma/bin/chroma /usr/local/bin/chroma \
 && mkdir -p /data
ENV ANONYMIZED_TELEMETRY=False
VOLUME /data
EXPOSE 8000
ENTRYPOINT ["chroma"]
CMD ["run", "--host", "0.0.0.0", "--port", "8000", "--path", "/data"]
