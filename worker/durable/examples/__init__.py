"""Example workflows: what `make demo` runs and what the Kubernetes samples' worker imports."""
