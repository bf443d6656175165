"""A real FerretDB + Redis pair started by LocalStack: readiness, restarts, data survival."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pymongo
import pytest
import redis

from echostats_devstack import LocalStack
from echostats_devstack.paths import ferretdb_binary, find_repo_root
from echostats_devstack.ports import port_is_free

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None
    or (shutil.which("go") is None and not ferretdb_binary(find_repo_root()).is_file()),
    reason="needs redis-server and Go (or a built FerretDB launcher): make tools ferretdb",
)


def _mongo(stack: LocalStack) -> pymongo.MongoClient[dict[str, object]]:
    return pymongo.MongoClient(stack.mongodb_uri, serverSelectionTimeoutMS=2000)


def _redis(stack: LocalStack) -> redis.Redis:
    return redis.Redis.from_url(stack.redis_url, socket_timeout=1, socket_connect_timeout=1)


def test_ferretdb_and_redis_start_fail_and_recover(tmp_path: Path) -> None:
    began = time.monotonic()
    with LocalStack(tmp_path, components={"ferretdb", "redis"}) as stack:
        started = time.monotonic() - began
        print(f"FerretDB + Redis ready in {started:.2f}s")
        assert stack.processes_alive() == {"ferretdb": True, "redis": True}
        assert stack.mongodb_uri.endswith("/?directConnection=true")
        mongo, cache = _mongo(stack), _redis(stack)
        try:
            assert mongo.admin.command("ping")["ok"] == 1.0
            assert cache.ping() is True

            # Redis down: calls fail; back up on the same port: they work again.
            redis_port = stack.ports.redis
            stack.stop_component("redis")
            assert not stack.is_running("redis")
            with pytest.raises(redis.ConnectionError):
                cache.ping()
            began = time.monotonic()
            stack.start_component("redis")
            print(f"Redis restarted in {time.monotonic() - began:.2f}s")
            assert stack.ports.redis == redis_port
            assert cache.ping() is True

            # Data written to FerretDB survives a graceful restart and a SIGKILL.
            mongo.echostats_devstack_test.plays.insert_one({"_id": "p1", "track": "t1"})
            ferretdb_port = stack.ports.ferretdb
            began = time.monotonic()
            stack.restart_component("ferretdb")
            print(f"FerretDB restarted in {time.monotonic() - began:.2f}s")
            assert stack.ports.ferretdb == ferretdb_port
            found = mongo.echostats_devstack_test.plays.find_one({"_id": "p1"})
            assert found == {"_id": "p1", "track": "t1"}
            stack.kill_component("ferretdb")
            with pytest.raises(pymongo.errors.PyMongoError):
                pymongo.MongoClient(stack.mongodb_uri, serverSelectionTimeoutMS=300).admin.command(
                    "ping"
                )
            stack.start_component("ferretdb")
            assert mongo.echostats_devstack_test.plays.count_documents({}) == 1
            assert (tmp_path / "ferretdb" / "echostats_devstack_test.sqlite").is_file()
        finally:
            mongo.close()
            cache.close()
        log = stack.log_path("ferretdb").read_text()
        assert log.count("starting ") == 3
        assert "Ready to accept connections" in stack.log_path("redis").read_text()
    assert stack.processes_alive() == {"ferretdb": False, "redis": False}
    assert port_is_free(stack.ports.ferretdb)
    assert port_is_free(stack.ports.redis)
