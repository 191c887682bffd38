# syntax=docker/dockerfile:1
# jwtgate in a container: a static binary built with the project's own
# Makefile target (make build-static), on a distroless image, as non-root.
#
#   docker build -t jwtgate .
#   docker run --rm -p 8080:8080 -p 127.0.0.1:8081:8081 -v jwtgate-data:/var/lib/jwtgate jwtgate
#
# The admin listener binds 0.0.0.0 inside the container so that it can be
# published; publish it on loopback (127.0.0.1:8081:8081) or a private
# network only.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN make build-static BIN=/out VERSION=$VERSION && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/jwtgate /usr/local/bin/jwtgate
# The data directory (embedded key store, generated admin token), owned by
# the image's non-root user (65532).
COPY --from=build --chown=65532:65532 /out/data /var/lib/jwtgate
USER 65532:65532
EXPOSE 8080 8081
VOLUME ["/var/lib/jwtgate"]
ENTRYPOINT ["/usr/local/bin/jwtgate"]
CMD ["serve", "--data-dir", "/var/lib/jwtgate", "--addr", ":8080", "--admin-addr", "0.0.0.0:8081"]
