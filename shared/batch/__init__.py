"""Batch runs: every document waiting under a prefix, processed on a hosted model at its quota.

A batch run takes a *batch hold* on its model's ledger (so nothing tears the deployment down
under it, and an ad-hoc document arriving meanwhile rides the same deployment), makes the
deployment ready through the provisioner's step-wise `advance()` (continuing later through the
batch queue instead of sleeping while Azure provisions), then lists the input prefix page by
page and processes each document with the document engine's own pieces (decode, plan, answer,
outcome naming), paced client-side to the deployment's token and request budgets. A run works
in slices shorter than the function timeout and continues through a queue message; its state
(counters, the listing's continuation marker) is one blob changed under ETags, so a crash,
timeout or deadline resumes without redoing finished documents. At the end it writes a run
summary blob and releases its hold.

File roles, as in the other packages:

- `models.py`: the run's state and summary (pure records and decisions);
- `pacing.py`: the token and request budgets and the adaptive slow-down on 429 (pure decisions
  plus the limiter built on pyrate-limiter's buckets);
- `store.py`: adapters: the run-state blobs, the input listing, the leftover list, the queue;
- `processing.py`: one document of a batch, from its blob to its outcome;
- `flows.py`: the run itself (`BatchRunner`) and the port the schedule reconciler calls.
"""
