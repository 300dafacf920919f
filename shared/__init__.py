"""The on-demand hosting engine, one package per capability.

- `hosting/`: a hosted model's deployment: the hold ledger (who needs it, until when), the
  management-plane adapter, single-flight provisioning, teardown and the reaper.
- `documents/`: what processing a document means and the engine that does it: decoding,
  chunking, request planning, profiles, tokens, job records.
- `api/`: the HTTP API behind the portal.
- `cost/`: what hosting cost and saved: the hosting log, prices, the savings report.

At the top: `settings.py` (the one settings model), `composition.py` (the one composition
root, the only place that builds SDK clients), `storage.py` (JSON blobs under ETags) and
`inference.py` (the Azure OpenAI data plane with the app's one retry policy), which every
package may use. `renewal.py` keeps a hold or lease alive from a background thread.

The same few roles in every package: records and pure decisions (no I/O, the clock passed in
as an argument, so a planner can replay them on a virtual clock), thin adapters over one SDK
each, and flows that sequence decisions and adapters. Only `composition.py` wires them.
"""
