# redactor: one container, configured by a mounted YAML file and REDACTOR_* variables.
#   docker build -t redactor .
# First run on a fresh volume: create the vault and record the key ring it is made with
# (`serve` never creates a vault on its own: a missing one is an error, not a new empty one):
#   docker run --rm \
#     -v $PWD/config.yaml:/etc/redactor/config.yaml:ro -v $PWD/keys.json:/run/secrets/redactor-keys:ro \
#     -v redactor-data:/var/lib/redactor redactor vault init
# Then serve:
#   docker run -p 8080:8080 -p 9090:9090 \
#     -v $PWD/config.yaml:/etc/redactor/config.yaml:ro -v $PWD/keys.json:/run/secrets/redactor-keys:ro \
#     -v $PWD/audit.key:/run/secrets/redactor-audit-key:ro \
#     -v redactor-data:/var/lib/redactor redactor
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    REDACTOR_CONFIG=/etc/redactor/config.yaml \
    REDACTOR_KEY_FILE=/run/secrets/redactor-keys \
    REDACTOR_AUDIT_KEY_FILE=/run/secrets/redactor-audit-key \
    REDACTOR_DATA_DIR=/var/lib/redactor \
    REDACTOR_LISTEN=0.0.0.0:8080 \
    REDACTOR_ADMIN_LISTEN=0.0.0.0:9090

RUN groupadd --system --gid 10001 redactor \
 && useradd --system --uid 10001 --gid redactor --home-dir /var/lib/redactor --shell /usr/sbin/nologin redactor \
 && mkdir -p /var/lib/redactor /etc/redactor \
 && chown redactor:redactor /var/lib/redactor

WORKDIR /opt/redactor
COPY pyproject.toml README.md ./
COPY redactor ./redactor
COPY vault ./vault
COPY policies ./policies
RUN pip install . && cp policies/routes.example.yaml /etc/redactor/config.example.yaml

USER redactor
EXPOSE 8080 9090
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["redactor", "health", "--url", "http://127.0.0.1:9090/readyz"]
ENTRYPOINT ["redactor"]
CMD ["serve"]
