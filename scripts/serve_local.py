"""Serve the API locally with uvicorn (`make run`) and print a curl line once it is listening."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import uvicorn

SERVING = Path(__file__).resolve().parent.parent / "lambda_image"


def main() -> None:
    """Start uvicorn on the app factory; announce the URL when the socket is ready."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    args = parser.parse_args()
    sys.path.insert(0, str(SERVING))
    config = uvicorn.Config("app.main:create_app", factory=True, host=args.host, port=args.port)
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.05)
        base = f"http://{args.host}:{args.port}"
        query = "sepal_length=5.1&sepal_width=3.5&petal_length=1.4&petal_width=0.2"
        sys.stdout.write(f'\nReady. Docs: {base}/docs  Try:\n  curl "{base}/predict/?{query}"\n\n')
        sys.stdout.flush()

    threading.Thread(target=announce, daemon=True).start()
    server.run()


if __name__ == "__main__":
    main()
