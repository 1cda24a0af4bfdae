"""dcoder serve: the engine over HTTP for a team, with batching across requests."""
