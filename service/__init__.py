"""lensserve's HTTP service: FastAPI app, dynamic batcher, compiled-model engine, settings, CLI."""
