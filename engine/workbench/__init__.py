"""The coders' workbench: the worklist as a web application (HTTP API, sign-in, the page). docs/workbench.md."""
