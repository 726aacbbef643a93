"""``python -m pipeline.publish push ...``: see ``pipeline.publish.hub.main``."""

import sys

from pipeline.publish.hub import main

sys.exit(main())
