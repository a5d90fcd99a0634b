# The instrumented OpenAI proxy (openai_proxy.py) with exactly the packages pinned in requirements.txt.
#
#   docker build -t testopeninference-proxy .
#   docker run --rm --network host testopeninference-proxy --port 8080
#
# BASE_IMAGE needs python3 with venv. To build with no package index, put wheels for
# requirements.txt in a wheelhouse/ directory of the build context (pip download -r
# requirements.txt -d wheelhouse); the recorder's Docker backend does this for you when
# TESTOPENINFERENCE_DOCKER_WHEELHOUSE is set.
ARG BASE_IMAGE=python:3.13-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/venv/bin:$PATH

# "wheelhous[e]" copies the wheels when the directory exists and nothing when it does not.
COPY requirements.txt wheelhous[e] /build/
RUN python3 -m venv /venv \
    && if ls /build/*.whl >/dev/null 2>&1; then \
         pip install --no-cache-dir --no-index --find-links /build -r /build/requirements.txt; \
       else \
         pip install --no-cache-dir -r /build/requirements.txt; \
       fi \
    && rm -rf /build

COPY openai_proxy.py anthropic_proxy.py cohere_proxy.py /app/
WORKDIR /app
USER 65534:65534
ENTRYPOINT ["python", "/app/openai_proxy.py"]
CMD ["--host", "127.0.0.1", "--port", "8080"]
