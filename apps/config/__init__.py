"""Configuration: products, tests, test plans, characteristics, roles, devices, observation confirmation."""
