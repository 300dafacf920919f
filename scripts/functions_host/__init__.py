"""A local stand-in for the Azure Functions host: runs a `func.FunctionApp` without Core Tools.

Core Tools (`func start`) cannot be installed here, so this package plays the host's part for
local development, the demo and integration tests (`python -m scripts.functions_host`,
`make dev`; tests and the demo use `host.LocalFunctionsHost` directly).

Owns: indexing the app and resolving its bindings' app settings (`indexing`), running
invocations as the Python worker would (`invocation`), one module per trigger kind behind a
common shape (`triggers`: the `TriggerKind` base; `http`, `timers`, `blobs`, `queues`),
composing them (`host`: the registry from binding type to kind), the command line (`cli`)
and the one-line configuration errors they raise (`errors`). Storage triggers (`blobs`,
`queues`) run against whatever storage account their `connection` names: Azurite locally.

Must not: know anything about this particular app's business logic. Every function, trigger
and setting comes from `app.get_functions()` and the app settings, so adding a function never
needs a change here; adding a trigger kind means one new module and one registry line in
`host`.
"""
