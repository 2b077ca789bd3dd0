"""The client part: starting, signalling, inspecting and scheduling executions (`Durable`)."""
