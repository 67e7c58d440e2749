"""One error hierarchy: what a user can fix apart from what is a bug.

A `UserError` says what is wrong and what to do; the CLI prints it on one line and exits 2.
Anything else is a bug (or a failure the user cannot act on): the CLI lets it show its traceback
and exit 1. The subclasses keep the builtin they replace as a base, so callers that catch
ValueError, RuntimeError or FileNotFoundError still do.
"""

from __future__ import annotations


class ShoprankError(Exception):
    """Base of shoprank's own errors."""


class UserError(ShoprankError):
    """Something the user can fix; the message says what to do."""


class UserInputError(UserError, ValueError):
    """A flag, file or value the user gave cannot be used."""


class NotSetUpError(UserError, RuntimeError):
    """Something is not installed, built or indexed yet, or the machine cannot do what was asked."""


class MissingFileError(UserError, FileNotFoundError):
    """A file the user named (or a command should have made) is not there."""
