"""The pytest plugin's shared servers: real Redis and FerretDB, outages on the same port."""

from __future__ import annotations

import uuid

import pymongo
import pytest
import redis

from echostats_devstack.ports import LOOPBACK
from echostats_devstack.pytest_plugin import FerretDBServer, RedisServer


def test_redis_server_is_real_and_survives_an_outage(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=1, socket_connect_timeout=1)
    key = f"devstack-plugin-test:{uuid.uuid4().hex}"
    port = redis_server.port
    try:
        assert redis_server.url == f"redis://{LOOPBACK}:{port}/0"
        assert redis_server.running
        assert client.set(key, "v", ex=60) is True

        redis_server.stop()
        try:
            assert not redis_server.running
            with pytest.raises(redis.ConnectionError):
                client.ping()
        finally:
            redis_server.start()

        # Back on the same port, so clients built from `.url` reconnect by themselves;
        # without persistence it comes back empty.
        assert redis_server.port == port
        assert client.ping() is True
        assert client.exists(key) == 0
    finally:
        client.close()


def test_ferretdb_server_is_real_and_keeps_data_across_a_restart(
    ferretdb_server: FerretDBServer,
) -> None:
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        ferretdb_server.uri, serverSelectionTimeoutMS=5000
    )
    database = f"devstack_plugin_{uuid.uuid4().hex[:12]}"
    port = ferretdb_server.port
    try:
        assert ferretdb_server.uri == f"mongodb://{LOOPBACK}:{port}/?directConnection=true"
        client[database].things.insert_one({"_id": "t1", "n": 1})
        launches = ferretdb_server.log_path.read_text().count("starting ")

        ferretdb_server.stop()
        try:
            assert not ferretdb_server.running
        finally:
            ferretdb_server.start()

        assert ferretdb_server.port == port
        assert client[database].things.find_one({"_id": "t1"}) == {"_id": "t1", "n": 1}
        # A real relaunch (its log says so), not a server that was left running.
        assert ferretdb_server.log_path.read_text().count("starting ") == launches + 1
    finally:
        client.drop_database(database)
        client.close()
