# Stand-in for otel/opentelemetry-collector-contrib:<version>: the ocb-built collector, laid out like the
# official image (FROM scratch, /otelcol-contrib, config at /etc/otelcol-contrib/config.yaml, uid 10001).
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY otelcol-contrib /otelcol-contrib
COPY config.yaml /etc/otelcol-contrib/config.yaml
USER 10001
EXPOSE 4317 4318 55679
ENTRYPOINT ["/otelcol-contrib"]
CMD ["--config", "/etc/otelcol-contrib/config.yaml"]
