"""The operator's command, `hosting`: everything done by hand, as calls on the app's services.

Owns turning command lines into calls on the same services the function app uses (built by
`shared.composition.build_services` from the same `AppSettings`), and showing the answers:
rich tables and progress for people, JSON for scripts, exit codes that mean something.

- `app`: the typer app, its global options, one registration line per command module, and
  `main`, the console script's entry point, which turns every error into one line and an exit
  code.
- `session`: what every command shares (settings file, consoles, services, common options).
- `model_commands`: `status`, `schedule`, `up`, `down`.
- `job_commands`: `submit`, `jobs`, `job`.
- `upload_commands`: `upload` (documents into the input container or a batch prefix).
- `reachability`: whether the local Azure the settings point at answers, asked first.
- `batch_commands`: `batch run`, `batch status`.
- `flows`: what each command does, as an order of calls on the services (no rules of its own).
- `status`: a hosted model's status as plain values (pure).
- `schedule`: a model's next windows and batch runs and the reconciler's intent (pure).
- `settings_file`: the settings (the environment, overlaid by a `local.settings.json`-shaped
  file) and their errors in words.
- `parsing`: durations and moments given on the command line.
- `display`: tables, progress and log lines (rich); also used by `bench/`.
- `errors`: exit codes and the error that carries one.

Must not: hold business rules (when a deployment may be deleted, what a valid submission is,
how provisioning proceeds belong to `shared.hosting` and `shared.documents`), build SDK
clients itself, or read settings any other way than `AppSettings` does.
"""
