"""flotilla's model server: llama.cpp's HTTP server (OpenAI-compatible /v1/chat/completions, /health),
embedded in the xllamacpp wheel, started from environment variables. docs/local-model.md.

A launcher rather than llama.cpp's own `llama-server` binary because PyPI ships llama.cpp prebuilt only
inside xllamacpp, which exposes the server's parameters (`CommonParams`) but no command line.

Env (defaults in brackets):
  MODEL_PATH          the GGUF file [/models/local.gguf]
  MODEL_ALIAS         the model id the API reports and accepts [local]
  CHAT_TEMPLATE_FILE  Jinja chat template replacing the GGUF's own; empty keeps the GGUF's
                      [qwen-tools.jinja beside this file: why in docs/local-model.md]
  MODEL_HOST          address to listen on [127.0.0.1]; the image sets 0.0.0.0
  MODEL_PORT          [8080]
  MODEL_THREADS       CPU threads for generation and prompt processing [2]
  MODEL_CTX           context window in tokens, shared by all slots [8192]
  MODEL_PARALLEL      requests decoded at once (slots; each gets MODEL_CTX / MODEL_PARALLEL) [1]
  MODEL_SEED          sampling seed when a request names none [42]
  MODEL_API_KEY_FILE  a file holding the key callers must send as `Authorization: Bearer <key>`;
                      unset: no key (loopback use only). /health stays open for the healthcheck.
"""

import os
import signal
import sys
import threading
from pathlib import Path

import xllamacpp as xlc


def env(name: str, default: str) -> str:
    return os.environ.get(name, default).strip() or default


def env_int(name: str, default: int) -> int:
    raw = env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        sys.exit(f"model-server: {name} must be a whole number, got {raw!r}")
    if value < 1:
        sys.exit(f"model-server: {name} must be at least 1, got {value}")
    return value


def main() -> None:
    model = Path(env("MODEL_PATH", "/models/local.gguf"))
    if not model.is_file():
        sys.exit(
            f"model-server: MODEL_PATH {model} is not a file (put one in place with scripts/local-model)"
        )
    params = xlc.CommonParams()
    params.model.path = str(model)
    # A set in llama.cpp (a model may have several names); a plain string would become its letters.
    params.model_alias = {env("MODEL_ALIAS", "local")}
    params.hostnames = [env("MODEL_HOST", "127.0.0.1")]
    params.port = env_int("MODEL_PORT", 8080)
    params.n_ctx = env_int("MODEL_CTX", 8192)
    params.n_parallel = env_int("MODEL_PARALLEL", 1)
    threads = env_int("MODEL_THREADS", 2)
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.sampling.seed = env_int("MODEL_SEED", 42)
    # Jinja templates are what make llama.cpp parse tool calls into `tool_calls` at all.
    params.use_jinja = True
    template = os.environ.get(
        "CHAT_TEMPLATE_FILE", str(Path(__file__).with_name("qwen-tools.jinja"))
    ).strip()
    if template:
        path = Path(template)
        if not path.is_file():
            sys.exit(f"model-server: CHAT_TEMPLATE_FILE {path} is not a file")
        params.chat_template = path.read_text(encoding="utf-8")
    key_file = os.environ.get("MODEL_API_KEY_FILE", "").strip()
    if key_file:
        try:
            key = Path(key_file).read_text(encoding="utf-8").strip()
        except OSError as err:
            sys.exit(f"model-server: MODEL_API_KEY_FILE {key_file} cannot be read ({err.strerror})")
        if not key:
            sys.exit(f"model-server: MODEL_API_KEY_FILE {key_file} is empty")
        params.api_keys = [key]
    # The web UI is a chat page for people; this server is an API for services.
    params.ui = False

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = xlc.Server(params)  # loads the model, then serves on a thread of its own
    print(
        f"model-server: {model.name} on {server.listening_address} "
        f"(threads {threads}, ctx {params.n_ctx}, template {template or 'the GGUF own'}, "
        f"{'API key required' if key_file else 'no API key'})",
        flush=True,
    )
    stop.wait()
    # Process exit stops the server thread; llama.cpp has no graceful drain to wait for.
    print("model-server: stopping", flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
