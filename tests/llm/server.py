"""A local OpenAI-compatible chat server for the LLM intent tests.

llama.cpp's own HTTP server, from the xllamacpp wheel that scripts/setup
installs into .cache/llm/venv, serving one GGUF model under the alias
"local" at temperature 0 (greedy, so answers repeat run to run). It serves
GET /health and POST /v1/chat/completions, honouring response_format
json_schema.

    .cache/llm/venv/bin/python tests/llm/server.py --model FILE.gguf --port PORT

The server runs on threads of this process; the main thread only waits
for SIGTERM or SIGINT (or, with --exit-with-stdin, for standard input to
close), so stopping this process by its PID stops the server. The test
waits for GET /health to answer 200 before sending work.
"""

import argparse
import os
import signal
import sys
import threading


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="GGUF file to serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--alias", default="local", help="model name clients ask for")
    parser.add_argument("--ctx", type=int, default=2048, help="context length in tokens")
    # One thread by default: llama.cpp's threads spin-wait for each other,
    # so with two threads on a 2-core machine that is also running other
    # work (the embedded classifier, other tests, a build) a token took
    # 195 ms instead of 25 ms with one thread.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="also stop when standard input closes (the parent died)",
    )
    args = parser.parse_args()

    if not os.path.isfile(args.model):
        print(f"no model at {args.model}: run scripts/setup", file=sys.stderr)
        return 2

    # Imported late so that --help works without the venv.
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    # One request at a time: the tests measure single-request latency,
    # and on 2 cores parallel slots only share the same threads.
    params.n_parallel = 1
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.sampling.temp = 0.0
    params.model_alias = {args.alias}

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.exit_with_stdin:

        def watch_stdin() -> None:
            while sys.stdin.buffer.read(4096):
                pass
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()

    server = xllamacpp.Server(params)  # noqa: F841 (serves while referenced)
    print(f"serving {args.model} as {args.alias!r} on http://{args.host}:{args.port}", flush=True)
    stop.wait()
    # Leave without unwinding llama.cpp's threads: the process is done.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
