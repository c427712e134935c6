# hearken's container image: a static-enough release build on Debian, run on distroless as a
# non-root user with a read-only root filesystem (the chart sets readOnlyRootFilesystem), with
# the bundled sample calls inside so `helm test` can replay one.
#
#   docker build -t hearken .
#   docker run --rm -p 50051:50051 hearken                     # hearken serve
#   docker run --rm hearken demo                               # the demo, in the container

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY src src
COPY samples samples
# The learned listening model, embedded in the binary (include_bytes!).
COPY models models
COPY benches benches
COPY examples examples
RUN cargo build --release --locked --bin hearken

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/hearken /usr/local/bin/hearken
COPY --from=build /src/samples /usr/share/hearken/samples
# distroless's "nonroot" user.
USER 65532:65532
# gRPC (plaintext HTTP/2).
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/hearken"]
CMD ["serve", "--plaintext", "--addr", "0.0.0.0:50051"]
