"""The ASGI application: JSON API under /api/v1, server-rendered pages, and the middleware around them."""
