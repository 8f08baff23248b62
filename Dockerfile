# The kvcert image: the operator (`kvcert operator run`, the default) and the local Key Vault
# (`kvcert vault serve --data-dir /tmp/vault ...`) from one venv in /opt/kvcert.
#
# BASE is any Debian-like image with Python 3.11 and the venv module, the same in every stage
# (the venv links to the base's interpreter). `docker build .` uses the public python image;
# hack/images.sh builds without Docker on a Debian base made by mmdebstrap:
#   buildah build --build-arg BASE=localhost/kvcert-base:<key> ...
# At run time only /tmp is written (HOME, the vault's data dir): a read-only root works.
ARG BASE=python:3.11-slim

FROM ${BASE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# /opt/kvcert is the venv that ships, made without pip; /opt/build holds pip and the build
# backend, and installs into it with `pip --python`.
RUN python3 -m venv --without-pip /opt/kvcert \
 && python3 -m venv /opt/build \
 && /opt/build/bin/pip install --no-cache-dir setuptools==84.2.1
WORKDIR /src
# Dependencies in a stage of their own: a change to operator/ does not reinstall them.
COPY pyproject.toml README.md ./
RUN python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' > /tmp/requirements.txt \
 && /opt/build/bin/pip --python /opt/kvcert/bin/python install --no-cache-dir -r /tmp/requirements.txt

# The project's wheel, installed under /opt/stage (its files only, at their final paths), so
# that a source change makes a small layer of its own in the final image.
FROM deps AS builder
COPY operator/ operator/
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation -w /tmp/dist . \
 && /opt/build/bin/pip --python /opt/kvcert/bin/python install --no-cache-dir --no-deps --no-warn-script-location \
      --root /opt/stage /tmp/dist/kvcert-*.whl

FROM ${BASE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="kvcert" \
      org.opencontainers.image.description="Kubernetes operator for Azure Key Vault certificates, with a local Key Vault" \
      org.opencontainers.image.source="https://github.com/kvcert/kvcert" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# kopf calls getpass.getuser() at start-up: the uid needs a passwd entry. The mmdebstrap base
# has no useradd, so append directly.
RUN echo 'kvcert:x:65532:65532:kvcert:/tmp:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'kvcert:x:65532:' >> /etc/group
COPY --from=deps /opt/kvcert /opt/kvcert
COPY --from=builder /opt/stage/ /
ENV PATH=/opt/kvcert/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
USER 65532:65532
ENTRYPOINT ["kvcert"]
CMD ["operator", "run"]
