"""`scv`: the command line (CONTRACT §2). Exit 0 on success; otherwise one line on stderr.

Each command lives in the module of its area (night, sql, linkage, privacy), which adds it to the
parser with `register(add)`; this module only builds the parser and reports failures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from scv_cli import linkage, night, privacy, sql
from scv_cli.errors import CliError
from sources.config import ConfigError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scv", description="Single customer view warehouse.")
    p.add_argument("--config", help="config file (default: $SCV_CONFIG, else data/sources/scv.yml)")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help)
        sp.add_argument("--config", default=argparse.SUPPRESS, help="config file")
        return sp

    for area in (night, sql, linkage, privacy):  # the order of `scv --help`
        area.register(add)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, ConfigError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"scv {args.command}: {first}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"scv {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`scv sql … | head`): not an error of ours.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
