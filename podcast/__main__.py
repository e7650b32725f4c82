"""``python -m podcast`` and the ``podcast`` command.

The offline voice's worker process is started before anything else is imported (see
podcast.warmup), so the model loads while the CLI does.
"""

import sys


def main() -> None:
    from .warmup import prestart

    prestart(sys.argv[1:])
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
