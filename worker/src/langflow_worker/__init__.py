"""Queue worker for the Langflow platform runtime."""

__version__ = "0.1.0"
