"""``python -m engine workbench``: serve the coders' workbench (the worklist page and its HTTP API) until Ctrl-C.

``python -m engine workbench keygen --key-file K`` writes the local mode's signing key;
``python -m engine workbench token --user ID --role coder`` mints a local-mode token (the page's sign-in).
Settings: ``ICDCODER_WORKBENCH_*`` beside the worklist's ``ICDCODER_REDIS_*`` and ``ICDCODER_KAFKA_*``
(docs/workbench.md). Put it behind TLS termination: it serves plain HTTP.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from schemas.cli import UserError
from schemas.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="default ICDCODER_WORKBENCH_HOST (127.0.0.1)")
    parser.add_argument("--port", type=int, help="default ICDCODER_WORKBENCH_PORT (8000; 0: a free port, printed)")
    parser.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                        help="addresses of the TLS-terminating proxy whose X-Forwarded-* headers are trusted (default 127.0.0.1)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    p = actions.add_parser("keygen", help="write a new local-mode signing key (EC P-256, PEM, mode 0600)")
    p.add_argument("--key-file", type=Path, help="default ICDCODER_WORKBENCH_LOCAL_KEY_FILE")
    p = actions.add_parser("token", help="mint a local-mode bearer token for a user")
    p.add_argument("--user", required=True, help="the coder id (a FHIR id: it becomes Practitioner/<id>)")
    p.add_argument("--role", action="append", choices=("coder", "supervisor"), required=True, help="repeatable")
    p.add_argument("--hours", type=float, default=12.0, help="validity (default 12: a shift)")
    p.add_argument("--key-file", type=Path, help="default ICDCODER_WORKBENCH_LOCAL_KEY_FILE")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    wb = settings.workbench
    from engine.workbench.auth import mint_local_token, write_local_key

    if args.action in ("keygen", "token"):
        key_file = args.key_file or wb.local_key_file
        if key_file is None:
            raise UserError("give --key-file or set ICDCODER_WORKBENCH_LOCAL_KEY_FILE")
        try:
            if args.action == "keygen":
                print(f"wrote {write_local_key(key_file)}; serve with ICDCODER_WORKBENCH_AUTH=local ICDCODER_WORKBENCH_LOCAL_KEY_FILE={key_file}")
            else:
                roles = [wb.coder_role if r == "coder" else wb.supervisor_role for r in args.role]
                print(mint_local_token(key_file, args.user, roles, wb.oidc_audience, args.hours))
        except (OSError, ValueError) as err:
            raise UserError(str(err)) from None
        return 0
    return serve(settings, args.host or wb.host, wb.port if args.port is None else args.port, args.forwarded_allow_ips)


def serve(settings, host: str, port: int, forwarded_allow_ips: str) -> int:
    import uvicorn

    from engine.observability import setup_json_logging
    from engine.workbench.app import build_services, create_app

    setup_json_logging(settings.log_level)
    app = create_app(build_services(settings))
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_config=None, proxy_headers=True,
                            forwarded_allow_ips=forwarded_allow_ips, server_header=False)
    server = uvicorn.Server(config)
    print(f"workbench: http://{host}:{port}/ (auth {settings.workbench.auth}, note text from {settings.workbench.text_source}); "
          "Ctrl-C stops it", flush=True)
    server.run()
    return 0
