"""A local stand-in for Azure: the Cognitive Services management plane and the Azure OpenAI
data plane, served over HTTPS by one process (`python -m simulator`).

State lives in memory and is computed lazily from a scaled simulated clock, so provisioning
that takes minutes on Azure takes fractions of a second here while every state transition
still happens in order. `simulator.process.start_simulator` starts it for tests and tools;
`simulator.admin.SimulatorAdmin` drives its admin endpoints (faults, billing, clock).
"""
