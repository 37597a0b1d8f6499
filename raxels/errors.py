"""The error type for bad user input: the CLI prints its one-line message and exits 2."""


class InputError(ValueError):
    """A file or value given by the user cannot be used. The message names the file and the problem."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (a library's can run to many), or its type's name if it has none."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
