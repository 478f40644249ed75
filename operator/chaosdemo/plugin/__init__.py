"""`kubectl chaosdemo`: the kubectl plugin (views.py is pure; cli.py talks to the API server)."""
