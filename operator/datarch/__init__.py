"""datarch: verifies a platform's documented data architecture against its live stores."""

__version__ = "0.1.0"
