"""Entry point.  Subcommands are imported only when used, so `--help` stays fast."""

from __future__ import annotations

import importlib
from typing import Any

import click

# name → (import string, short help); loaded lazily
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("flagman.cli.serve:serve", "Run the gateway server."),
    "route": ("flagman.cli.route:route", "Show which model a prompt would go to, and why."),
    "logs": ("flagman.cli.logs:logs", "Show or export the request log."),
    "demo": ("flagman.cli.demo:demo", "Run the offline GSM8K demo through a real server."),
    "routes": ("flagman.cli.routes:routes_group", "Fit and evaluate semantic routes."),
    "train": ("flagman.cli.learned:train", "Train a learned router on outcome data."),
    "calibrate": ("flagman.cli.learned:calibrate", "Find the threshold for a strong-model share."),
    "eval": ("flagman.cli.learned:eval_cmd", "Evaluate a learned router (APGR, CPT, AIQ)."),
    "data": ("flagman.cli.learned:data_group", "Import and export outcome data."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        mod_name, _, attr = COMMANDS[name][0].partition(":")
        cmd: Any = getattr(importlib.import_module(mod_name), attr)
        return cmd  # type: ignore[no-any-return]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flagman")
def cli() -> None:
    """flagman: a fast model router and AI gateway.

    One OpenAI- and Anthropic-compatible endpoint in front of many providers,
    with rule, semantic and learned routing and automatic failover.
    """
