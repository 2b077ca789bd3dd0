"""Stores: where executions live (`MemoryStore` for tests and demos, `RedisStore` for production)."""
