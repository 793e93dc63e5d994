"""The redis client is an optional extra: the core never imports it, and its absence is explained."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis.asyncio as aioredis

import throttle_lab.shared as shared
from throttle_lab.shared.scripts import SCRIPTS

from .helpers import real


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_core_does_not_import_redis() -> None:
    result = _python("import sys, throttle_lab, throttle_lab.lab.experiments; print('redis' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_without_the_redis_package() -> None:
    # sys.modules[name] = None makes `import name` fail, as if the package were not installed.
    result = _python(
        "import sys; sys.modules['redis'] = None\n"
        "import throttle_lab.shared.server, throttle_lab.lab.many_workers  # no client library needed\n"
        "try:\n"
        "    from throttle_lab.shared import SharedGCRA\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'throttle-lab[redis]'" in result.stdout


def test_public_names_resolve() -> None:
    for name in shared.__all__:
        assert getattr(shared, name) is not None, name
    assert set(shared.__all__) <= set(dir(shared))
    with pytest.raises(AttributeError):
        _ = shared.NoSuchThing


def test_every_script_loads_and_has_the_advertised_sha(redis_url: str) -> None:
    async def main() -> dict[str, str]:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        shas = {name: await client.script_load(script.source) for name, script in SCRIPTS.items()}
        await client.aclose()
        return shas

    shas = real(main())
    assert shas == {name: script.sha for name, script in SCRIPTS.items()}
