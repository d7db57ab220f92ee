"""The audit chain registry's tables (schema step 7) on both stores: a genesis is kept as
first recorded, a checkpoint only moves forward, files left behind are listed with their
chain."""

from __future__ import annotations

from tests.vault.conftest import Backend
from vault.chains import ChainCheckpoint, ChainFile, ChainGenesis, ChainUpdate
from vault.startup import open_store


def _genesis(chain: str, pid: int = 4242) -> ChainGenesis:
    return ChainGenesis(
        chain, "cli", "vault erase-token", "host-a", pid, "/var/log/audit-cli.jsonl", "k1",
        f"2026-12-07T09:00:0{pid % 10}.000+00:00",
    )  # fmt: skip


async def test_chains_are_recorded_once_and_their_checkpoints_only_move_forward(
    backend: Backend,
) -> None:
    store = await open_store(backend.config, create=True)
    try:
        await store.migrate()
        assert await store.list_chains() == []
        await store.record_chain(ChainUpdate(genesis=_genesis("c1")))
        # A second genesis of the same chain (a retry) changes nothing.
        await store.record_chain(ChainUpdate(genesis=_genesis("c1", pid=9)))
        left = ChainFile("c1", 0, 41, "/var/log/audit.2026-000000000000.jsonl", "rotated", "t1")
        at = "2026-12-07T09:01:00.000+00:00"
        await store.record_chain(
            ChainUpdate(checkpoint=ChainCheckpoint("c1", 57, "ab" * 32, at, False), files=(left,))
        )
        # An older checkpoint arriving late never lowers the mark.
        await store.record_chain(
            ChainUpdate(checkpoint=ChainCheckpoint("c1", 12, "cd" * 32, "t0", False))
        )
        await store.record_chain(
            ChainUpdate(
                genesis=_genesis("c2", pid=7),
                checkpoint=ChainCheckpoint("c2", 2, "ef" * 32, "t2", True),
            )
        )
        first, second = await store.list_chains()
    finally:
        await store.close()
    assert first.genesis == _genesis("c1")
    assert (first.checkpoint_seq, first.checkpoint_mac, first.checkpoint_at) == (57, "ab" * 32, at)
    assert first.closed is False
    assert first.files == (left,)
    assert second.chain_id == "c2"
    assert (second.checkpoint_seq, second.closed, second.files) == (2, True, ())
