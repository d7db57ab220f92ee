# redactor: one container, configured by a YAML file and REDACTOR_* variables.
#   docker build -t redactor .
# The image runs as uid 10001 and ships /etc/redactor/config.yaml (deploy/config.yaml: a
# sidecar in front of a connector on 127.0.0.1:9000) and the policies it names; mount your
# own config over it. Relative paths in a config file: what redactor writes resolves against
# REDACTOR_DATA_DIR (the volume), what it reads against the config file's folder.
# Key files are mode 0600: make yours readable by uid 10001 (`chown 10001 keys.json audit.key`).
# Create them once, anywhere redactor is installed (`pip install .`), and keep copies:
#   redactor audit init-key audit.key
#   REDACTOR_AUDIT_KEY_FILE=audit.key redactor keys init --key-file keys.json
# First run on a fresh volume: create the vault and record the key ring it is made with
# (`serve` never creates a vault on its own: a missing one is an error, not a new empty one):
#   docker run --rm \
#     -v $PWD/config.yaml:/etc/redactor/config.yaml:ro -v $PWD/keys.json:/run/secrets/redactor-keys:ro \
#     -v $PWD/audit.key:/run/secrets/redactor-audit-key:ro \
#     -v redactor-data:/var/lib/redactor redactor vault init
# Then serve (proxy 8080, agent API 8081, admin 9090; jwks.json: your IdP's public keys):
#   docker run -p 8080:8080 -p 8081:8081 -p 9090:9090 \
#     -v $PWD/config.yaml:/etc/redactor/config.yaml:ro -v $PWD/keys.json:/run/secrets/redactor-keys:ro \
#     -v $PWD/audit.key:/run/secrets/redactor-audit-key:ro -v $PWD/jwks.json:/etc/redactor/jwks.json:ro \
#     -v redactor-data:/var/lib/redactor redactor
# deploy/docker-compose.yaml and deploy/kubernetes/ run the same image with the same mounts.

# Build stage: the pinned dependencies (requirements/runtime.txt, hashes checked) and the
# project in a virtual environment; the final stage copies that environment alone.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The venv gets no pip of its own (never used at run time): the base image's pip installs
# into it. Bytecode is compiled at install (pip's default) and kept: a read-only root file
# system cannot cache it later, and without it every start compiles presidio and spaCy again.
RUN python -m venv --without-pip /opt/redactor
COPY requirements/runtime.txt requirements/runtime.txt
RUN pip --python /opt/redactor/bin/python install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY redactor ./redactor
COPY vault ./vault
COPY policies ./policies
RUN pip --python /opt/redactor/bin/python install --no-deps . \
 && find /opt/redactor -depth -type d -name tests -path '*/site-packages/*/tests' -exec rm -rf {} + \
 && rm -rf /root/.cache

FROM python:3.11-slim
ENV PATH=/opt/redactor/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REDACTOR_CONFIG=/etc/redactor/config.yaml \
    REDACTOR_KEY_FILE=/run/secrets/redactor-keys \
    REDACTOR_AUDIT_KEY_FILE=/run/secrets/redactor-audit-key \
    REDACTOR_DATA_DIR=/var/lib/redactor \
    REDACTOR_LISTEN=0.0.0.0:8080 \
    REDACTOR_ADMIN_LISTEN=0.0.0.0:9090

RUN groupadd --system --gid 10001 redactor \
 && useradd --system --uid 10001 --gid redactor --home-dir /var/lib/redactor --shell /usr/sbin/nologin redactor \
 && mkdir -p /var/lib/redactor /etc/redactor \
 && chown redactor:redactor /var/lib/redactor \
 && chmod 0750 /var/lib/redactor
COPY --from=build /opt/redactor /opt/redactor
# What the shipped config reads beside it: the reveal policy (its schema is package data).
COPY policies/default.yaml /etc/redactor/policies/
COPY deploy/config.yaml /etc/redactor/config.yaml
COPY policies/routes.example.yaml /etc/redactor/config.example.yaml

# The data volume: vault (SQLite), audit trail, development keys. A new named volume takes
# this folder's owner (uid 10001); the process never writes anywhere else.
VOLUME ["/var/lib/redactor"]
WORKDIR /var/lib/redactor
USER 10001:10001
EXPOSE 8080 8081 9090
# `redactor health` imports no third-party package and probes over a bare socket:
# about 40 ms of CPU per probe (benchmarks/README.md, "CLI start-up").
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["redactor", "health", "--url", "http://127.0.0.1:9090/readyz"]
ENTRYPOINT ["redactor"]
CMD ["serve"]
