# syntax=docker/dockerfile:1
# Build: a static binary (CGO off; the embedded engine's SQLite is pure Go).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/dossier ./cmd/dossier \
 && mkdir -p /out/data

# Run: distroless static, non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dossier /usr/local/bin/dossier
COPY --from=build --chown=nonroot:nonroot /out/data /data
ENV DOSSIER_ADDR=:8080 DOSSIER_DATA=/data
EXPOSE 8080
VOLUME ["/data"]
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/dossier"]
CMD ["serve"]
