"""The API router: no trailing slash needed (both `/contracts` and `/contracts/` answer)."""

from rest_framework.routers import SimpleRouter


class ApiRouter(SimpleRouter):
    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
