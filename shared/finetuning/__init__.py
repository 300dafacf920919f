"""From training data to a hosted model: dataset checks, fine-tuning jobs, their curves.

- `limits`: Azure's fine-tuning limits and training prices, one table with sources and dates.
- `examples`: the rules one JSONL line must follow (pure).
- `dataset`: `check_dataset`, streaming over a training (and validation) file (pure apart from
  reading the files); `report`: its findings, statistics and estimate, as JSON and as text.
- `curves`: reading `results.csv` and judging its curves (pure); `plot`: drawing them.
- `hosting`: the TOML that hosts a fine-tuned model with this app (pure).
- `jobs`: the adapter to Azure's files and fine-tuning endpoints through the `openai` client.

Must not: build clients (the console's composition does), or hold hosting rules.
"""
