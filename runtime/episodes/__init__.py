"""Episodes: a loaded bundle (``bundle``), its environments (``env``, ``state_pool``), simulated users, parsing of
model turns, the built-in agents and evaluation. Everything else in the runtime stands on this package."""
