# syntax=docker/dockerfile:1
# gatehouse in a container: a static binary (CGO_ENABLED=0) on distroless,
# running as a non-root user. Build and run:
#   docker build --build-arg COMMIT=$(git rev-parse HEAD) -t gatehouse .
#   docker run -p 8443:8443 -v $PWD/conf:/etc/gatehouse:ro gatehouse
# The configuration and its certificates are mounted at /etc/gatehouse;
# listen on a port above 1024 (the user has no capabilities).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build context has no .git (.dockerignore), so the commit comes in as
# an argument and is printed by 'gatehouse version'.
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/gatehouse/gatehouse/internal/cli.commit=${COMMIT}" \
      -o /out/gatehouse ./cmd/gatehouse

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
USER nonroot:nonroot
EXPOSE 8443
ENV GATEHOUSE_CONFIG=/etc/gatehouse/gatehouse.yaml
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve"]
