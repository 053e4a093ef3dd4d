"""``python -m preflight [--build | --probe]``: what deploy_v15.3.sh runs before the bot."""

import sys

from preflight.checks import main

if __name__ == "__main__":
    sys.exit(main())
