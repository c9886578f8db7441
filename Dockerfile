# Multi-stage build of a small static image.
#   docker build -t zim-operator:0.1.0 .
# The binary is linked statically against musl, so the final image needs no libc; TLS is rustls with webpki
# roots compiled in, so it needs no CA bundle either. It runs as an unprivileged user and writes nothing.
# The build image is pinned by digest (the tag is kept for readers); refresh both together, see
# docs/SUPPLY-CHAIN.md. The final stage is `scratch`, which is not an image and has nothing to pin.
FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
# The musl target of the platform the stage runs on (x86_64 or aarch64): `docker buildx build --platform
# linux/amd64,linux/arm64` runs this stage once per platform, natively or emulated (docs/RELEASING.md).
RUN rustup target add "$(uname -m)-unknown-linux-musl" && apt-get update && apt-get install -y --no-install-recommends musl-tools
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN target="$(uname -m)-unknown-linux-musl" && cargo build --release --locked --target "$target" \
 && cp "target/$target/release/zim-operator" /zim-operator

FROM scratch
COPY --from=build /zim-operator /zim-operator
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/zim-operator"]
CMD ["run"]
