from rest_framework.routers import SimpleRouter


class OrgRouter(SimpleRouter):
    """Routes with an optional trailing slash (`…/files` and `…/files/`): the docs use none."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
