"""`scv forget`, `scv access`, `scv audience`: the privacy commands (CONTRACT §2).

`register(add)` is called by `scv_cli.main.build_parser` with its `add(name, help)` helper. Each
command returns an exit code; failures are one line without personal data (`CliError`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from scv_cli.errors import CliError
from sources.config import Config, load_config

__all__ = ["register"]


def _store(cfg: Config):
    from warehouse.store import Warehouse

    # with the saved audiences: `scv forget` rewrites their exports too
    return Warehouse(cfg.warehouse, cfg.staging_warehouse, cfg.exports, cfg.audience_specs())


def _lookup(args: argparse.Namespace):
    from warehouse.privacy import Lookup, PrivacyError

    try:
        return Lookup.of(args.email, args.phone, args.customer_id)
    except PrivacyError as exc:
        raise CliError(str(exc)) from None


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
        raise CliError(
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
        raise CliError(str(exc)) from None
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
        raise CliError(str(exc)) from None
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
def _audience_spec(cfg: Config, args: argparse.Namespace):
    """The audience asked for: a saved one (`--saved NAME`) or the filters given, checked."""
    from transforms.audience import AudienceError, AudienceSpec, check_spec
    from transforms.rfm import segment_rules

    filters = (args.stage, args.segment, args.channel, args.min_spend, args.max_spend,
               args.currency, args.min_recency_days, args.max_recency_days, args.sql, args.purpose)  # fmt: skip
    if args.saved is not None:
        if any(f is not None for f in filters):
            raise CliError("--saved NAME takes its filters and purpose from the config: give no others")
        saved = {s.name: s for s in cfg.audience_specs()}
        if args.saved not in saved:
            raise CliError(
                f"--saved {args.saved}: no such audience in the config; saved audiences: "
                + (", ".join(saved) or "(none: add them under audiences:)")
            )
        spec = saved[args.saved]
        return spec if args.format is None else replace(spec, format=args.format)
    if not args.purpose:
        raise CliError("--purpose P is needed: only customers who consented to P are written")
    segments = [r["name"] if isinstance(r, dict) else r.name for r in segment_rules(cfg.rfm)]
    spec = AudienceSpec(
        purpose=args.purpose,
        stages=tuple(args.stage or ()),
        segments=tuple(args.segment or ()),
        channels=tuple(args.channel or ()),
        min_spend=args.min_spend,
        max_spend=args.max_spend,
        currency=args.currency,
        min_recency_days=args.min_recency_days,
        max_recency_days=args.max_recency_days,
        format=args.format or "hashed",
    )
    try:
        return check_spec(spec, segments, reporting_currency=cfg.currency.reporting)
    except AudienceError as exc:
        raise CliError(str(exc)) from None


def _check_audience_out(cfg: Config, out: Path) -> None:
    """An audience file is the marketer's: never inside the folders a night writes (the saved
    audiences there are replaced, or deleted, every night)."""
    for guarded in (cfg.exports, cfg.warehouse.parent, cfg.staging_dir, cfg.landing_dir):
        if out.resolve().is_relative_to(guarded.resolve()):
            raise CliError(f"--out {out}: inside {guarded}, which the night writes; choose another folder")


def cmd_audience(args: argparse.Namespace) -> int:
    """Counts (never a person) on stdout; with --out and without --dry-run, the file."""
    from transforms.audience import AudienceError
    from warehouse.audience import build_audience, write_audience_csv

    cfg = load_config(args.config)
    if args.out is None and not args.dry_run:
        raise CliError("--out FILE is needed (or --dry-run for the counts only)")
    if args.out is not None and not args.dry_run:
        _check_audience_out(cfg, Path(args.out))
    spec = _audience_spec(cfg, args)
    try:
        result = build_audience(_store(cfg), spec, sql=args.sql)
    except AudienceError as exc:
        raise CliError(str(exc)) from None
    if not args.dry_run:
        write_audience_csv(result.rows, Path(args.out))
    spec = result.spec
    print(f"audience: {spec.describe()}" + (f" [saved: {spec.name}]" if spec.name else ""))
    print(f"{result.customers:>10,}  customers in the warehouse")
    for label, n in result.filter_counts.items():
        print(f"{n:>10,}  {label}")
    if result.unknown_ids:
        print(f"{result.unknown_ids:>10,}  ids returned by --sql that are not customers (ignored)")
    if result.filter_counts:
        print(f"{result.matched:>10,}  match every filter")
    print(f"{-result.no_consent_record:>10,}  no consent decision for {spec.purpose!r}")
    print(f"{-result.withdrawn:>10,}  consent to {spec.purpose!r} withdrawn or refused")
    if result.no_identifier:
        print(f"{-result.no_identifier:>10,}  consenting but without a usable email or phone")
    layout = (
        "hashed: Email,Phone as SHA-256 hex, Google Ads Customer Match layout"
        if spec.format == "hashed"
        else "plain: customer_id,email,phone,first_name,last_name"
    )
    if args.dry_run:
        print(f"{result.written:>10,}  would be written ({layout}); dry run: no file written")
    else:
        print(f"{result.written:>10,}  written to {args.out} ({layout})")
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

    au = add("audience", "a consent-aware audience file (plain for an email tool, hashed for ad platforms)")
    au.add_argument("--stage", action="append", metavar="STAGE",
                    help="lifecycle stage: prospect, new, active, reactivated, at_risk, lost (repeat: any of them)")
    au.add_argument("--segment", action="append", metavar="NAME",
                    help='RFM segment, e.g. Champions or "At Risk" (repeat: any of them)')
    au.add_argument("--channel", action="append", metavar="CHANNEL",
                    help="seen on this channel, e.g. online, store, email (repeat: any of them)")
    au.add_argument("--min-spend", type=float, metavar="AMOUNT", help="total completed spend at least AMOUNT")
    au.add_argument("--max-spend", type=float, metavar="AMOUNT", help="total completed spend at most AMOUNT")
    au.add_argument("--currency", metavar="CODE",
                    help="currency of the spend bounds (default: currency.reporting, or the one currency spent in)")
    au.add_argument("--min-recency-days", type=int, metavar="N", help="last order at least N days ago")
    au.add_argument("--max-recency-days", type=int, metavar="N", help="last order at most N days ago")
    au.add_argument("--sql", help='and among the customers of a read-only "SELECT customer_id FROM …"')
    au.add_argument("--purpose", help="consent purpose, e.g. email_marketing (always enforced)")
    au.add_argument("--format", choices=("plain", "hashed"), default=None,
                    help="plain: customer_id, email, phone, names; hashed (default): SHA-256 Email,Phone")
    au.add_argument("--saved", metavar="NAME", help="the saved audience NAME of the config (audiences:)")
    au.add_argument("--dry-run", action="store_true", help="print the counts only; write no file")
    au.add_argument("--out", metavar="FILE", help="CSV file to write")
    au.set_defaults(func=cmd_audience)
