"""Evaluating a candidate model against the one hosted now, and promoting only what wins.

- `examples.py`: the held-out set (chat JSONL, the fine-tuning format) read and checked;
- `scoring.py`: exact match, token F1 and ROUGE-L per example, totals, and the paired
  bootstrap that calls a difference within noise a tie (pure);
- `records.py`: the evaluation run, its per-example answers and the promotion history as
  stored records, and the decisions over them (pure);
- `store.py`: the blob adapters for those records;
- `flows.py`: running an evaluation on both models' deployments under holds, resumably;
- `report.py`: the side-by-side report as text and HTML.
"""
