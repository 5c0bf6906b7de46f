"""The one exception type that means "the user asked for something impossible"."""


class UserError(Exception):
    """A mistake in the user's input (file, option, value). The CLI prints it as one line and exits 2."""
