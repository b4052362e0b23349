"""The answer the server gives when a jail refuses a client: 403 when banned, 429 with Retry-After when
slowed down. Kept apart from the engine so the web layer depends only on this small type."""


class Refused(Exception):
    def __init__(self, status: int, detail: str, retry_after: int = 0):
        super().__init__(detail)
        self.status = status
        self.retry_after = retry_after
