"""The exit codes a CI gate relies on (README, "Errors and exit codes"): 1 means "a group got worse" and nothing else."""

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 3
