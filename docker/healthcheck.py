"""Container health check for lmr-worker: GET /healthz on the worker's metrics port.

Exit 0 when it answers 200, 1 otherwise (refused, timed out, 503 "main loop stalled").
The port comes from ``LMR_METRICS_PORT`` (the same variable ``lmr-worker run`` reads);
``LMR_METRICS_PORT=0`` turns the metrics server off, and then there is nothing to check (exit 0).
Standard library only, so it runs in the slim image without curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    raw = os.environ.get("LMR_METRICS_PORT", "9108").strip() or "9108"
    try:
        port = int(raw)
    except ValueError:
        print(f"LMR_METRICS_PORT={raw!r} is not a port number", file=sys.stderr)
        return 1
    if port == 0:
        print("metrics server disabled (LMR_METRICS_PORT=0): nothing to check")
        return 0
    url = f"http://127.0.0.1:{port}/healthz"
    timeout = float(os.environ.get("LMR_HEALTHCHECK_TIMEOUT_S", "5"))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read(200).decode("utf-8", "replace").strip()
            print(f"{url}: {resp.status} {body}")
            return 0 if resp.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"{url}: {exc.code} {exc.read(200).decode('utf-8', 'replace').strip()}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
