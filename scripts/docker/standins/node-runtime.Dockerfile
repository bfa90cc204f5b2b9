# Stand-in for gcr.io/distroless/nodejs<major>-debian12:nonroot: no shell, no package manager; only
# node at /nodejs/bin/node, the Debian 12 libraries it links, CA certs and the nonroot user (65532).
# scripts/offline-images assembles rootfs/ from its debootstrap root.
FROM scratch
ARG NODE_VERSION
COPY rootfs/ /
COPY --chown=65532:65532 home/ /home/
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    NODE_VERSION=${NODE_VERSION}
USER 65532
WORKDIR /home/nonroot
ENTRYPOINT ["/nodejs/bin/node"]
