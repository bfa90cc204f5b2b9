# Stand-in for debian:bookworm-slim: the debootstrap minbase root (already small), with apt from
# Debian's mirror like the real image.
ARG BASE=flotilla-offline/debian:bookworm
FROM ${BASE}
CMD ["bash"]
