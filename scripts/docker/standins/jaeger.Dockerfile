# Stand-in for jaegertracing/jaeger:2.x: the jaeger v2 binary built from the Go module (in-memory
# all-in-one by default: OTLP in on 4317/4318, query API and UI on 16686). The module carries only a
# placeholder UI page; the API works, so the collector's OTLP export and trace queries do.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY jaeger /cmd/jaeger/jaeger-linux
# As the official image: the all-in-one config binds every endpoint to JAEGER_LISTEN_HOST, which
# defaults to localhost, so without this the collector's OTLP export is refused. /tmp is a volume
# there too, so it stays writable under `read_only: true`.
ENV JAEGER_LISTEN_HOST=0.0.0.0
VOLUME ["/tmp"]
USER 10001
EXPOSE 4317 4318 16686
ENTRYPOINT ["/cmd/jaeger/jaeger-linux"]
