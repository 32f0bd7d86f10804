FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY ml_core ml_core
COPY leadscore leadscore
COPY models models
RUN pip install --no-cache-dir -c constraints.txt -e ".[fleet]" && useradd --create-home leadscore && mkdir -p .run metrics data && chown -R leadscore models .run metrics data
USER leadscore
