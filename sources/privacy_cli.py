"""`scv forget`, `scv access`, `scv audience`: the privacy commands (CONTRACT §2).

`register(add)` is called by `sources.cli.build_parser` with its `add(name, help)` helper. Each
command returns an exit code; failures are one line without personal data (`CliError`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sources.config import Config, load_config

__all__ = ["register"]


def _cli_error(message: str) -> Exception:
    from sources.cli import CliError

    return CliError(message)


def _store(cfg: Config):
    from warehouse.store import Warehouse

    return Warehouse(cfg.warehouse, cfg.staging_warehouse, cfg.exports)


def _lookup(args: argparse.Namespace):
    from warehouse.privacy import Lookup, PrivacyError

    try:
        return Lookup.of(args.email, args.phone, args.customer_id)
    except PrivacyError as exc:
        raise _cli_error(str(exc)) from None


def _identity_options(sp: argparse.ArgumentParser) -> None:
    who = sp.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the person's email address")
    who.add_argument("--phone", help="the person's phone number (best with country code: +44…)")
    who.add_argument("--customer-id", dest="customer_id", help="the person's customer_id")


# ------------------------------------------------------------------------------------- forget
def cmd_forget(args: argparse.Namespace) -> int:
    from warehouse.privacy import PrivacyError, SourceHints, check_privacy_key, forget

    cfg = load_config(args.config)
    key = cfg.privacy_key()
    if not key:
        raise _cli_error(
            f"no privacy key configured: set the environment variable {cfg.privacy.key_env} "
            "(or privacy.key in the config) to a long random secret, and keep it: later nights "
            "need the same key to keep erased people out"
        )
    lookup = _lookup(args)
    try:
        # the list records a verifier of its key: hashes under another key would match nobody
        check_privacy_key(cfg.data_dir, key, cfg.privacy.key_env)
        result = forget(
            _store(cfg),
            cfg.data_dir,
            key,
            lookup,
            SourceHints.from_config(cfg),
            landing_dir=cfg.landing_dir,
        )
    except PrivacyError as exc:
        raise _cli_error(str(exc)) from None
    former = f" (and {result.former_ids} former customer id(s))" if result.former_ids else ""
    print(
        f"forgotten (subject {result.subject}): {result.customers} customer{former}, "
        f"{result.source_records} source record(s), {result.rows_removed_total} warehouse rows removed"
    )
    for table, n in result.rows_removed.items():
        print(f"  {table:<28}{n:>8,}")
    print(
        f"exports rewritten: {len(result.exports_rewritten)} table(s); "
        f"staging warehouse {'deleted' if result.staging_deleted else 'absent'}; "
        f"{result.landing_files_deleted} landing file(s) deleted (sources re-read next night)"
    )
    print(
        f"suppression list: {result.identifiers_suppressed} keyed hash(es) of identifiers "
        f"({result.suppression_added} new) under {cfg.data_dir / 'privacy'}"
    )
    if result.identifiers_shared:
        print(
            f"  {result.identifiers_shared} email/phone identifier(s) also held by other "
            "customers were not suppressed (that would erase them too)"
        )
    return 0


# ------------------------------------------------------------------------------------- access
def cmd_access(args: argparse.Namespace) -> int:
    from warehouse.privacy import PrivacyError, SourceHints, access_document

    cfg = load_config(args.config)
    lookup = _lookup(args)
    try:
        doc = access_document(_store(cfg), lookup, SourceHints.from_config(cfg))
    except PrivacyError as exc:
        raise _cli_error(str(exc)) from None
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        print(f"access document written to {out}", file=sys.stderr)
    else:
        print(text)
    return 0


# ----------------------------------------------------------------------------------- audience
def cmd_audience(args: argparse.Namespace) -> int:
    from warehouse.privacy import PrivacyError, build_audience, write_audience_csv

    cfg = load_config(args.config)
    try:
        result = build_audience(_store(cfg), args.purpose, segment=args.segment, sql=args.sql)
        write_audience_csv(result.rows, Path(args.out))
    except PrivacyError as exc:
        raise _cli_error(str(exc)) from None
    what = f"segment {args.segment!r}" if args.segment is not None else "--sql query"
    print(f"{result.in_segment:,} customers in {what}")
    if result.unknown_ids:
        print(f"  {result.unknown_ids:,} ids returned by --sql are not customers (ignored)")
    print(
        f"  {result.excluded_for_consent:,} excluded for lack of consent to {args.purpose!r} "
        f"({result.no_consent_record:,} no record, {result.withdrawn:,} withdrawn)"
    )
    if result.no_identifier:
        print(f"  {result.no_identifier:,} consenting but without email or phone (left out)")
    print(
        f"{result.written:,} written to {args.out} "
        "(Google Ads Customer Match layout: Email,Phone as SHA-256 hex)"
    )
    return 0


def register(add) -> None:
    """Add the privacy subcommands to the `scv` parser (`add(name, help)` → subparser)."""
    f = add("forget", "erase a person everywhere, for good (GDPR right to erasure)")
    _identity_options(f)
    f.set_defaults(func=cmd_forget)

    a = add("access", "print one JSON document with everything held about a person")
    _identity_options(a)
    a.add_argument("--out", help="write the document to this file instead of stdout")
    a.set_defaults(func=cmd_access)

    au = add("audience", "write a consent-aware, hashed audience file (Google Customer Match CSV)")
    which = au.add_mutually_exclusive_group(required=True)
    which.add_argument("--segment", help="RFM segment (e.g. Champions), lifecycle stage, or all")
    which.add_argument("--sql", help='read-only "SELECT customer_id FROM …" choosing the customers')
    au.add_argument("--purpose", required=True, help="consent purpose, e.g. email_marketing")
    au.add_argument("--out", required=True, help="CSV file to write")
    au.set_defaults(func=cmd_audience)
