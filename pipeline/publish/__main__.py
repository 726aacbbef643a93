"""``python -m pipeline.publish push ...``: see ``pipeline.publish.hub.main``; a user's mistake (a missing folder,
a file holding a token) is one line and status 2."""

import sys

from pipeline.publish.hub import main
from pipeline.user_errors import one_line_errors

with one_line_errors("python -m pipeline.publish"):
    sys.exit(main())
