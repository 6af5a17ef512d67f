"""Storage: schema, engines, and every money and inventory statement in one place."""
