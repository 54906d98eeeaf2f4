"""Other trainers' protocols served by the environment (OpenRLHF, OpenEnv), all over the one scoring path."""
