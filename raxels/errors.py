"""The error type for bad user input: the CLI prints its one-line message and exits 2."""


class InputError(ValueError):
    """A file or value given by the user cannot be used. The message names the file and the problem."""
