"""`python -m llama_cpp.server` that accepts any X-Request-ID (same arguments).

llama-cpp-python's server validates an incoming ``X-Request-ID`` as a UUID (starlette-context's
RequestIdPlugin) and answers an empty ``400 Bad Request`` to anything else. The ids Sluice makes
are UUIDs, but an id a client chose is kept and forwarded as it is. The id is
only echoed back, so this launcher turns the check off and runs the server unchanged otherwise.

    .venv-model/bin/python scripts/llama_server.py --model models/X.gguf --host 127.0.0.1 --port 8081
"""

import runpy

from starlette_context.plugins import RequestIdPlugin

_init = RequestIdPlugin.__init__


def _init_without_validation(self, *args, **kwargs):
    kwargs["validate"] = False
    _init(self, *args, **kwargs)


RequestIdPlugin.__init__ = _init_without_validation
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
