"""The faults the suites inject, each an (inject, heal) pair acting on a `Run`."""

from __future__ import annotations

from tests.load.scenario import Fault, Heal, Run


def upstream(mode: str) -> tuple[Fault, Heal]:
    """The stand-in upstream refuses, hangs, answers 500 or 429, or cuts its answers."""

    async def inject(run: Run) -> None:
        await run.site.upstream.set_mode(mode)

    return inject, healthy_upstream


async def healthy_upstream(run: Run) -> None:
    await run.site.upstream.set_mode("ok")


async def _cut_postgres(run: Run) -> None:
    # New connections refused and live ones reset: the database is gone for the servers,
    # while the shared server itself runs on untouched.
    assert run.site.pg_proxy is not None
    await run.site.pg_proxy.refuse()
    run.site.pg_proxy.cut()


async def _restore_postgres(run: Run) -> None:
    assert run.site.pg_proxy is not None
    await run.site.pg_proxy.resume()


POSTGRES_UNREACHABLE: tuple[Fault, Heal] = (_cut_postgres, _restore_postgres)


async def kill_and_restart(run: Run) -> None:
    """SIGKILL the first server and start it again (same config, data and ports)."""
    server = run.servers[0]
    server.kill()
    await server.wait()
    await server.start()


async def nothing(_run: Run) -> None:
    return None
