"""Writes the files the fine-tuning tests read (`python -m tests.unit.finetuning.make_datasets`).

`datasets/clean.jsonl` (60 examples) and `datasets/valid.jsonl` (15 others) pass every check;
each file in `datasets/broken/` breaks one rule, at the line `tests/unit/finetuning/
test_dataset_rules.py` names. Kept as files, not built in the tests, so a reader can open the
exact bytes a rule is about.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).parent / "datasets"
BROKEN_LINE = 5


def example(number: int, *, system: bool = True, user: bool = True) -> dict[str, object]:
    messages: list[dict[str, object]] = []
    if system:
        messages.append({"role": "system", "content": "You classify support tickets."})
    if user:
        messages.append({"role": "user", "content": f"Ticket {number}: my invoice is wrong."})
    messages.append({"role": "assistant", "content": f"billing (ticket {number})"})
    return {"messages": messages}


def line(value: object) -> bytes:
    return json.dumps(value).encode() + b"\n"


def with_broken_line(broken: bytes, *, total: int = 12) -> bytes:
    """`total` lines, clean except line BROKEN_LINE."""
    lines = [line(example(n)) for n in range(1, total + 1)]
    lines[BROKEN_LINE - 1] = broken
    return b"".join(lines)


def chat(*messages: Mapping[str, object], **extra: object) -> bytes:
    return line({"messages": list(messages), **extra})


USER = {"role": "user", "content": "Ticket: refund please."}
ASSISTANT = {"role": "assistant", "content": "billing"}
SYSTEM = {"role": "system", "content": "You classify support tickets."}


def broken_files() -> dict[str, bytes]:
    pc = [line({"prompt": f"Ticket {n}:", "completion": " billing"}) for n in range(1, 13)]
    duplicate = [line(example(n)) for n in range(1, 13)]
    duplicate[7] = json.dumps(example(3), indent=None, separators=(", ", ":  ")).encode() + b"\n"
    return {
        "not_json.jsonl": with_broken_line(b'{"messages": [{"role": "user", "content": "hi"}\n'),
        "not_utf8.jsonl": with_broken_line(
            b'{"messages": [{"role": "user", "content": "caf\xe9"}, '
            b'{"role": "assistant", "content": "ok"}]}\n'
        ),
        "not_object.jsonl": with_broken_line(b'["user", "assistant"]\n'),
        "no_messages.jsonl": with_broken_line(line({"messages": []})),
        "unknown_key_example.jsonl": with_broken_line(chat(SYSTEM, USER, ASSISTANT, labels=["x"])),
        "unknown_key_message.jsonl": with_broken_line(
            chat(SYSTEM, {**USER, "audio": "clip.wav"}, ASSISTANT)
        ),
        "unknown_role.jsonl": with_broken_line(
            chat(SYSTEM, {"role": "customer", "content": "Refund?"}, ASSISTANT)
        ),
        "empty_content.jsonl": with_broken_line(
            chat(SYSTEM, USER, {"role": "assistant", "content": "  "})
        ),
        "no_assistant.jsonl": with_broken_line(chat(SYSTEM, USER)),
        "bad_weight.jsonl": with_broken_line(chat(SYSTEM, USER, {**ASSISTANT, "weight": 0.5})),
        "weight_not_on_assistant.jsonl": with_broken_line(
            chat(SYSTEM, {**USER, "weight": 1}, ASSISTANT)
        ),
        "mixed_formats.jsonl": with_broken_line(
            line({"prompt": "Ticket:", "completion": " billing"})
        ),
        "format_not_for_model.jsonl": b"".join(pc),
        "bad_prompt_completion.jsonl": b"".join(
            [*pc[:4], line({"prompt": "Ticket:", "completion": 7}), *pc[5:]]
        ),
        "too_few_examples.jsonl": b"".join(line(example(n)) for n in range(1, 6)),
        "over_token_limit.jsonl": with_broken_line(
            chat(SYSTEM, {"role": "user", "content": "x" * 60_000}, ASSISTANT)
        ),
        "line_too_long.jsonl": with_broken_line(
            chat(SYSTEM, {"role": "user", "content": "y" * 5_000}, ASSISTANT)
        ),
        "few_examples.jsonl": b"".join(line(example(n)) for n in range(1, 21)),
        "duplicate.jsonl": b"".join(duplicate),
        "shared_valid.jsonl": b"".join(
            [line(example(n)) for n in (101, 7, 102, 103, 104, 105, 106, 107, 108, 109, 110)]
        ),
        "no_system.jsonl": with_broken_line(line(example(99, system=False))),
        "no_user.jsonl": with_broken_line(line(example(98, user=False))),
    }


def results_csv(*, diverge_after: int | None) -> str:
    """100 steps of a job: falling loss, rising accuracy; validation every 10 steps, full
    validation at the end of each of 2 epochs. With `diverge_after`, validation loss climbs
    from that step on while training loss keeps falling (overfitting)."""
    rows = [
        "step,train_loss,train_mean_token_accuracy,valid_loss,validation_mean_token_accuracy,"
        "full_valid_loss,full_valid_mean_token_accuracy"
    ]
    for step in range(1, 101):
        progress = step / 100
        wiggle = 0.03 * ((step * 7919) % 11 - 5) / 5  # deterministic noise in [-0.03, 0.03]
        train = 0.3 + 1.7 * math.exp(-4 * progress) + wiggle
        accuracy = 0.55 + 0.4 * (1 - math.exp(-4 * progress))
        valid = train + 0.1
        if diverge_after is not None and step > diverge_after:
            valid = (
                0.3
                + 1.7 * math.exp(-4 * diverge_after / 100)
                + 0.1
                + 0.012 * (step - diverge_after)
            )
        cells = [str(step), f"{train:.5f}", f"{accuracy:.5f}", "", "", "", ""]
        if step % 10 == 0:
            cells[3], cells[4] = f"{valid:.5f}", f"{accuracy - 0.03:.5f}"
        if step % 50 == 0:
            cells[5], cells[6] = f"{valid:.5f}", f"{accuracy - 0.03:.5f}"
        rows.append(",".join(cells))
    return "\n".join(rows) + "\n"


def main() -> None:
    (HERE / "results_good.csv").write_text(results_csv(diverge_after=None))
    (HERE / "results_diverging.csv").write_text(results_csv(diverge_after=40))
    (HERE / "broken").mkdir(parents=True, exist_ok=True)
    (HERE / "clean.jsonl").write_bytes(
        b"\xef\xbb\xbf" + b"".join(line(example(n)) for n in range(1, 61))
    )
    (HERE / "valid.jsonl").write_bytes(b"".join(line(example(n)) for n in range(201, 216)))
    for name, content in broken_files().items():
        (HERE / "broken" / name).write_bytes(content)


if __name__ == "__main__":
    main()
