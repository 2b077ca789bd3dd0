"""The worker part: what runs executions (the worker loop, the replay engine, step threads, the schedule poller)."""
