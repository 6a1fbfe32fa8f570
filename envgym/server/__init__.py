"""`envgym serve`: any registered env over the network, in OpenEnv's protocol, and its tools over MCP.

Import `create_app` / `ServeConfig` from `envgym.server.app`; this package stays import-light so the CLI
loads fast and the web stack (the `server` extra) loads only when a server starts.
"""
