"""The HTTP API and page (`spokenqa serve`)."""
