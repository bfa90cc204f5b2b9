# Stand-in for jaegertracing/jaeger:2.x: the jaeger v2 binary built from the Go module (in-memory
# all-in-one by default: OTLP in on 4317/4318, query API and UI on 16686). The module carries only a
# placeholder UI page; the API works, so the collector's OTLP export and trace queries do.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY jaeger /cmd/jaeger/jaeger-linux
USER 10001
EXPOSE 4317 4318 16686
ENTRYPOINT ["/cmd/jaeger/jaeger-linux"]
