"""How the tool reaches AWS, and what it knows of it.

* :mod:`.connection`: sessions, clients and the clock of a run (``Target``, ``Connection``,
  ``connect``), against AWS or the embedded sandbox.
* :mod:`.targets`: which region and endpoint a command means (flags, environment, manifests).
* :mod:`.regions`: region names, checked against botocore's partition data.
* :mod:`.ratelimit`: per-operation request pacing under KMS's quotas.
* :mod:`.connection_errors`: what each ConnectionErrorCode means and how to fix it.
* :mod:`.permissions`: every AWS call the tool makes, as the IAM policy each mode needs.
"""
