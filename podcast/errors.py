"""The one user-facing error type.

Every failure a user can fix (bad config, unreadable source, missing tool)
is raised as :class:`PodcastError` with a message that names the input at
fault and what to do. The CLI prints that message on one line and exits 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class PodcastError(Exception):
    """A problem the user can act on; ``str(err)`` is the whole message."""
