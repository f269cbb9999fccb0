"""HTTP routers: validate and delegate (no JAX here)."""
