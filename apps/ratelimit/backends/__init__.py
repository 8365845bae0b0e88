"""Storage of rate-limit state: a base contract, an in-process memory backend and a Redis backend."""
