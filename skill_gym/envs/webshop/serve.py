"""``skill-gym serve webshop``: the WebShop web site (:mod:`.site`) on 127.0.0.1.

This module holds :func:`add_serve_target` (see :data:`skill_gym.cli.SERVE_TARGETS`); it imports nothing heavy
at top level, since the CLI imports it whenever it builds its parser.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_serve_target"]


def add_serve_target(targets: Any) -> None:
    """Add ``webshop`` to ``skill-gym serve`` (``targets``: the ``serve`` sub-parsers)."""
    parser = targets.add_parser(
        "webshop",
        help="the WebShop web site (upstream's routes) on the embedded catalog or upstream's files",
        description="Serve WebShop's shop on 127.0.0.1 with upstream's routes: /<session_id> (an id with 'fixed' "
        "ending in _<n> shops for goal n), /search_results/..., /item_page/..., /item_sub_page/..., /done/... "
        "(the reward), and /purchase/<session_id> (the last purchase as JSON).",
    )
    parser.add_argument("--data-dir", type=Path, help="upstream's data files (default: $WEBSHOP_DATA or embedded)")
    parser.add_argument("--num-products", type=int, help="use only the first N products (upstream's num_products)")
    parser.add_argument("--synthetic-goals", action="store_true", help="synthetic goals instead of human ones")
    parser.add_argument("--reward", choices=["compatible", "strict"], default="compatible", help="reward mode")
    parser.add_argument("--show-attrs", action="store_true", help="offer upstream's hidden Attributes sub-page")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=3000, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the goals drawn for non-'fixed' sessions")
    parser.add_argument("--log-requests", action="store_true", help="print an access-log line per request")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from skill_gym.envs.webshop.data import WebShopDataError, load_data
    from skill_gym.envs.webshop.site import ShopSite, SiteServer

    if args.num_products is not None and args.num_products < 1:
        raise ValueError("--num-products must be a positive number")
    try:
        data = load_data(data_dir=args.data_dir, num_products=args.num_products, human_goals=not args.synthetic_goals)
    except WebShopDataError as error:
        raise ValueError(str(error)) from None
    site = ShopSite(data, reward=args.reward, show_attrs=args.show_attrs, seed=args.seed)
    server = SiteServer(site, args.host, args.port, log_requests=args.log_requests)
    return server.run(f"WebShop: {len(data.products)} products, {len(data.goals)} goals at {server.url}/fixed_0")
