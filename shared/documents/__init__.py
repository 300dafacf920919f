"""Documents: what processing a document means, and the engine that does it.

Pure decisions: `decoding` (bytes to text or a rejection), `chunking` (text into parts within
a token budget), `planning` (the chat requests, combining answers, parsing them), `profiles`
(what a processing profile asks), `tokens` (counting), `jobs` (job records and who may work on
one). Adapter: `job_store` (job records in blob storage). Flow: `engine` (a document from blob
to result or error record, holding the deployment while it works).

Must not: call the management plane or change the ledger except through `shared.hosting`'s
provisioner; decisions read no clock and do no I/O.
"""
