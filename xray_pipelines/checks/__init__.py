"""Asset checks, one module per checked domain."""
