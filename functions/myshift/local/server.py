"""`python -m myshift.local.server`: the local engine as a background endpoint.

`myshift local up` starts this process; it provisions the engine, writes the state
file the CLI reads (`--local`), and serves until it gets SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

from myshift.local.engine import LocalEngine


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the myshift local engine.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-file", type=Path, required=True)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="warm Lambda worker processes (0: run handlers in this process; "
        "default: MYSHIFT_LOCAL_WORKERS, else one per CPU, 2 to 4)",
    )
    args = parser.parse_args()

    engine = LocalEngine(port=args.port, workers=args.workers)
    resources = engine.start()
    record = {**resources.as_dict(), "pid": os.getpid()}
    tmp = args.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(args.state_file)  # the CLI sees a complete file or none

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    engine.stop()
    args.state_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
