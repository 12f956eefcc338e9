"""Built by a later issue (see README: Roadmap)."""
