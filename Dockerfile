# mailsort-backend with ONNX Runtime GPU (CUDA 13 libraries from PyPI wheels).
# Runs on CPU too: the same library carries the CPU provider.
#
#   docker build -t mailsort-backend .
#   docker run --gpus all -p 8080:8080 -e MAILSORT_API_KEYS=... \
#     -v $PWD/out:/bundles:ro mailsort-backend --bundle /bundles/support.msb
#
# The image holds the binaries and the prepared models (encoder for
# /v1/classify, reranker); bundles are mounted. TLS is the proxy's job.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mailsort-backend -p mailsort-cli \
 && cp target/release/mailsort-backend target/release/mailsort /usr/local/bin/

FROM python:3.11-slim-bookworm AS runtime
RUN useradd --system --uid 10001 mailsort
COPY scripts/requirements.txt /tmp/requirements.txt
# Model preparation needs numpy/onnx/safetensors/onnxruntime (CPU build,
# FP16 check); serving loads libonnxruntime.so from onnxruntime-gpu.
RUN python -m venv /opt/prep && /opt/prep/bin/pip install --no-cache-dir -r /tmp/requirements.txt \
 && python -m venv /opt/ort && /opt/ort/bin/pip install --no-cache-dir \
      "onnxruntime-gpu[cuda,cudnn]==1.32.0" nvidia-cublas
COPY --from=build /usr/local/bin/mailsort-backend /usr/local/bin/mailsort /usr/local/bin/
WORKDIR /opt/mailsort
# The committed generic reranker; mount or bake a per-taxonomy one instead
# with MAILSORT_RERANKER_DIR.
COPY models/reranker-generic models/reranker-generic
RUN MAILSORT_PYTHON=/opt/prep/bin/python mailsort models fetch --dir models/all-MiniLM-L6-v2 \
 && MAILSORT_PYTHON=/opt/prep/bin/python mailsort models reranker --from models/reranker-generic --dir models/reranker \
 && rm -rf /opt/prep models/*/download models/reranker-generic \
 && chown -R mailsort /opt/mailsort
ENV ORT_DYLIB_PATH=/opt/ort/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0 \
    LD_LIBRARY_PATH=/opt/ort/lib/python3.11/site-packages/nvidia/cu13/lib:/opt/ort/lib/python3.11/site-packages/nvidia/cudnn/lib \
    MAILSORT_MODEL_DIR=/opt/mailsort/models/all-MiniLM-L6-v2 \
    MAILSORT_RERANKER_DIR=/opt/mailsort/models/reranker \
    MAILSORT_BIND=0.0.0.0:8080
USER mailsort
EXPOSE 8080
ENTRYPOINT ["mailsort-backend"]
