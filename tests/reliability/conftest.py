from tests.e2e.helpers import cli, cli_process  # noqa: F401  (the fixture: the CLI in a new process per command)
