"""reconciler: a declarative reconciler for AWS KMS custom key stores."""

__version__ = "0.1.0"
