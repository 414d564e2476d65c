"""The HTTP API and page (`spokenqa serve`): FastAPI, run by uvicorn. See docs/SERVING.md.

    from spokenqa.serve.app import create_app
    from spokenqa.serve.limits import Limits
    from spokenqa.serve.server import BackgroundServer, serve

    app = create_app("runs/demo/best", Limits(max_questions=4))   # an ASGI app
    serve("runs/demo/best", "127.0.0.1", 8000)                    # uvicorn until Ctrl-C

The modules, by what they hold:

- `app`: `create_app` and the JSON routes (/v1/answer, /v1/transcribe, /v1/audio, /health).
- `limits`: `Limits`, every size, count and time limit (checked by the request models with 422,
  by the `middleware` with 413/408, by `workers` with 503, and the store's bounds).
- `schemas`: the pydantic request and response models.
- `handlers`: the one error format and the exception handlers that produce it.
- `middleware`: `BodyLimit`, the request body's size and time limits.
- `store`: `TranscriptStore`, the bounded LRU of uploaded recordings and their transcripts.
- `workers`: `Service` (model and ASR calls off the event loop, `workers` at a time) and
  `AsrProcess` (ASR in a separate process: pocketsphinx holds the GIL while it decodes).
- `ranges`: audio by byte range (`Range`), from memory (uploads) or streamed from disk (the archive's).
- `archive`: `Archive`, the index and its reader (``serve --index``), and the routes over it
  (/v1/search, /v1/archive, /v1/documents/{id}/audio; /v1/answer without a context).
- `pages`: the web page and the API docs, files served with a strict Content-Security-Policy.
- `server`: `serve` (uvicorn until Ctrl-C), `BackgroundServer` (in a thread), `bind_socket`.

Import order, bottom up: limits, store, handlers -> schemas, middleware, ranges, workers, pages ->
archive -> app -> server. Nothing here imports the CLI or the corpus tools.
"""
