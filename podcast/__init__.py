"""podcast: collected tech news in, a narrated and published podcast episode out.

The pipeline (see podcast.pipeline): collect → write → voice → mix → publish.
"""

__all__ = ["PodcastError", "__version__"]
__version__ = "0.1.0"

from .errors import PodcastError  # noqa: E402
