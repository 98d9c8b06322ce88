"""The scenarios of `trustnode simulate` (registered in `simulations.runner.SCENARIOS`)."""
