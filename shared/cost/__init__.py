"""Cost: what hosting the models cost, what it saved, and which strategy fits a traffic.

Owns the hosting log (`log`: one JSON line per change in a deployment's life, appended to one
append blob per model and UTC day), the prices (`prices`: per hosted model, from the
hosted-models file, each default with its source), the savings report (`report`: the log and
the job and batch records turned into periods, priced under both billing readings against
always-on and per-document hosting) and the planner (`planner/`: a traffic trace replayed
under each strategy on a virtual clock).

Must not: change a deployment or a hold. Appending to the log never fails the work that
caused it; a lost append is logged and the report says a gap may exist.
"""
