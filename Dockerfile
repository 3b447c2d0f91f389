# syntax=docker/dockerfile:1
#
# Sextant's container image: docker build -t sextant:0.1.0 .
# (docs/operations.md, "Deployment"). One static binary on distroless: no
# shell, no package manager, no libc; the smallest attack surface that still
# has CA certificates (for OTLP and export targets over TLS), /etc/passwd's
# nonroot user and tzdata.

# The build stage runs on the builder's own platform and cross-compiles
# (GOOS/GOARCH from BuildKit's TARGETOS/TARGETARCH), so a multi-platform
# build (--platform linux/amd64,linux/arm64) needs no emulation. Pin the
# image by digest in CI for reproducible builds.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
# Set by BuildKit (the default builder; RUN --mount needs it).
ARG TARGETOS TARGETARCH
WORKDIR /src
# Modules first: this layer stays cached until go.mod or go.sum changes.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO_ENABLED=0: a static binary, which the libc-less base below requires
# (Sextant needs no cgo: pgx, gRPC and the DNS resolver are pure Go).
# -trimpath: no build-machine paths in the binary; -s -w: no symbol table or
# DWARF (about a third smaller). Stack traces keep file:line.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/sextant ./cmd/sextant

FROM gcr.io/distroless/static-debian12:nonroot
# Numeric, so that Kubernetes' runAsNonRoot can check it (the deployment
# sets the same 65532).
USER 65532:65532
COPY --from=build /out/sextant /sextant
# The container configuration: listens on 0.0.0.0:9464, otherwise the
# embedded default. Kubernetes mounts its ConfigMap (made from the same
# file) over /etc/sextant; with docker run, mount your own:
#   docker run -p 9464:9464 -v $PWD/sextant.yaml:/etc/sextant/sextant.yaml:ro sextant:0.1.0
COPY deploy/kubernetes/sextant.yaml /etc/sextant/sextant.yaml
# server.listen's port: /metrics, /export, POST /events and /health*.
EXPOSE 9464
# Exec form: /sextant is PID 1 and receives SIGTERM itself, which starts the
# orderly shutdown (bounded by 15 s; docker stop's default 10 s grace is too
# short: use docker stop -t 20). Plugins are not in this image: build a
# derived image that adds them (a Node.js plugin needs a base with node)
# and set plugins.dir.
ENTRYPOINT ["/sextant"]
CMD ["run", "--config", "/etc/sextant/sextant.yaml"]
