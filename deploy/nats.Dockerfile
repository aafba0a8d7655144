# A NATS server image built from the nats-server version pinned in go.mod,
# for machines that cannot pull the official `nats` image (the project's
# tests). Users' compose file uses the official image by default.
#
# Without a registry: build the binary into bin/ of the context, then
#
#   CGO_ENABLED=0 go build -o CONTEXT/bin/nats-server github.com/nats-io/nats-server/v2
#   docker build -f deploy/nats.Dockerfile --target prebuilt -t cano-nats:test CONTEXT
#
# From source (needs BuildKit and the Go image), at the repository root:
#
#   docker build -f deploy/nats.Dockerfile -t cano-nats:latest .

ARG GO_IMAGE=golang:1.26-alpine

FROM scratch AS prebuilt
COPY bin/nats-server /nats-server
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/nats-server github.com/nats-io/nats-server/v2

FROM scratch
COPY --from=build /out/nats-server /nats-server
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
