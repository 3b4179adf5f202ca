"""`python -m xray_runtime`: the trading service (same as `xray runtime`)."""

import sys

from xray_runtime.app import main

if __name__ == "__main__":
    sys.exit(main())
