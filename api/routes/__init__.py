"""The JSON routes, one module per concern; create_app (api.app) adds each group."""
