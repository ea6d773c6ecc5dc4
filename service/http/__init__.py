"""The HTTP API: the app, its handlers and schemas, errors, caching, OpenAPI and the page."""
