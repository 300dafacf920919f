"""The HTTP API behind the portal: submitting documents and reading jobs (`jobs`).

Turns requests into calls on the job store and the input container, and answers in JSON.
Must not: process documents or touch deployments (the blob trigger and the engine do), or
build clients (the composition root passes them in).
"""
