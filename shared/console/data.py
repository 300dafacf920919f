"""`hosting data ...`: checking fine-tuning datasets before they are uploaded, fit for CI.

`hosting data check TRAIN.jsonl [VALID.jsonl] --base MODEL` runs
`shared.finetuning.dataset.check_dataset` and prints each finding as `FILE:LINE: error CODE:
message`, then the statistics and the training cost estimate; `--json` prints the whole
report instead. Exit 0 when there is no error (warnings allowed), 1 when there is one, 2 for
a usage error (unknown base model, missing file). Needs no settings and no network.
`hosting data limits` prints the limits and prices table the checks use, with sources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shared.console.display import print_json, stdout_console
from shared.console.errors import ConsoleError, ExitCode

data_app = typer.Typer(
    help="Check fine-tuning datasets (JSONL) before uploading them; fit for CI.",
    rich_markup_mode=None,
    no_args_is_help=False,
)

_JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
_DataFile = Annotated[
    Path,
    typer.Argument(metavar="TRAIN", exists=True, dir_okay=False, help="The training file."),
]


@data_app.command("check")
def check(
    training: _DataFile,
    validation: Annotated[
        Path | None,
        typer.Argument(metavar="VALID", exists=True, dir_okay=False, help="The validation file."),
    ] = None,
    *,
    base: Annotated[
        str,
        typer.Option(
            "--base",
            metavar="MODEL",
            help="The model to fine-tune: a base model (gpt-4.1-mini, gpt-4o-mini-2024-07-18) "
            "or a fine-tuned one (continuous fine-tuning).",
        ),
    ],
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1, max=50, help="Epochs for the estimate (default: Azure's default rule)."
        ),
    ] = None,
    price_per_million: Annotated[
        float | None,
        typer.Option(
            "--price-per-million",
            min=0.0,
            metavar="USD",
            help="Training price per million tokens (default: the limits table's).",
        ),
    ] = None,
    max_per_code: Annotated[
        int, typer.Option(min=1, help="List at most this many findings of each kind.")
    ] = 50,
    json_output: _JsonOption = False,
) -> None:
    """Check TRAIN.jsonl (and VALID.jsonl) for fine-tuning MODEL: errors, warnings, cost."""
    from shared.finetuning.dataset import check_dataset  # noqa: PLC0415 - numpy import
    from shared.finetuning.limits import UnknownBaseModel  # noqa: PLC0415

    try:
        report = check_dataset(
            training,
            validation,
            base_model=base,
            epochs=epochs,
            price_per_million=price_per_million,
            max_per_code=max_per_code,
        )
    except UnknownBaseModel as error:
        raise ConsoleError(str(error), ExitCode.USAGE) from error
    except OSError as error:
        raise ConsoleError(
            f"cannot read {error.filename}: {error.strerror}", ExitCode.USAGE
        ) from error
    if json_output:
        print_json(report.to_json())
    else:
        out = stdout_console()
        for line in report.summary_lines():
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(ExitCode.FAILED)


@data_app.command("limits")
def limits(json_output: _JsonOption = False) -> None:
    """The limits and training prices the checks use, with their sources and dates."""
    from shared.finetuning.limits import (  # noqa: PLC0415
        DEFAULT_EPOCH_RULE,
        FILE_LIMITS,
        limits_table,
    )

    rows = limits_table()
    if json_output:
        print_json(
            {
                "models": rows,
                "files": {
                    name: getattr(FILE_LIMITS, name).to_json()
                    for name in ("max_upload_bytes", "min_examples", "advised_examples")
                },
                "default_epochs": {
                    "source": DEFAULT_EPOCH_RULE.source,
                    "as_of": DEFAULT_EPOCH_RULE.as_of,
                    "verified": DEFAULT_EPOCH_RULE.verified,
                },
            }
        )
        return
    table = Table("model", "format", "tokens/example", "USD per 1M training tokens", "as of")
    for row in rows:
        limit = row["example_token_limit"]
        price = row["training_price_per_million_tokens"]
        assert isinstance(limit, dict) and isinstance(price, dict)
        table.add_row(
            str(row["model"]),
            str(row["format"]),
            f"{int(limit['value']):,}" + ("" if limit["verified"] else " (unverified)"),
            f"{price['value']:g}" + ("" if price["verified"] else " (unverified)"),
            str(price["as_of"]),
        )
    stdout_console().print(table)
