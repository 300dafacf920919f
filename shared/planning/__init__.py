"""The planner: which hosting strategy fits a traffic trace, found by replaying the engine.

Owns reading a trace (`trace`), the clairvoyant bound and the fixed baselines (`baselines`),
the in-process stand-in for Azure on a virtual clock (`stand_in`), the replay of the app's own
hosting decisions against it (`replay`: the hold rules, the idle grace, the window reconciler,
the reaper and the provisioner's steps, all the real code), windows fitted to a trace's weekly
pattern (`fitting`) and the comparison, Pareto front and recommendation (`strategies`).

Must not: read settings or the clock, or touch Azure or storage; the operator's command
(`shared/console/plan.py`) reads the files and draws.
"""
