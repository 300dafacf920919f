"""Hosting: keeping a fine-tuned deployment alive exactly while something needs it.

Owns the hold ledger's record and rules (`holds`: pure), the ledger adapter (`ledger`: one
blob per deployment under ETags), the management-plane adapter (`deployments`), single-flight
provisioning and teardown (`provisioner`), the reaper (`reaper`), and the changes in a
deployment's life they tell a listener about (`lifecycle`: create sent, serving, delete sent,
gone, vanished; the hosting log in `shared/cost/` listens).

Must not: know what a document is, read settings or build clients (the composition root
passes them in), or delete a deployment this app did not create or one with a live hold.
Decisions take the clock as an argument and do no I/O.
"""
