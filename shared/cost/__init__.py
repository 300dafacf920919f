"""Cost: what hosting the models cost and what it saved.

Owns the hosting log (`log`: one JSON line per change in a deployment's life, appended to one
append blob per model and UTC day, read back as lifetimes by `lifetimes`), the prices
(`prices`: per hosted model, from the hosted-models file, each default with its source),
billing under both readings (`billing`), and the savings report: the work read from the job
and batch records (`usage`), turned into periods and priced against always-on and
per-document hosting (`report`, pure), its flow (`reporting`) and its chart (`chart`); and
what the log teaches `idle_grace = "auto"`, a model's cold-start time (`learning`). Which
strategy fits a traffic before deploying is the planner's (`shared/planning/`), which prices
with `billing` and `prices`.

Must not: change a deployment or a hold. Appending to the log never fails the work that
caused it; a lost append is logged and the report says a gap may exist.
"""
