"""The pytest plugin's shared servers: real Redis and FerretDB, outages on the same port."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

import pymongo
import pymongo.errors
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


def _lookup_plan(data_dir: Path, database: str, collection: str) -> str:
    """SQLite's plan for the `_id` lookup FerretDB runs on a collection's table."""
    sqlite = sqlite3.connect(f"file:{data_dir / (database + '.sqlite')}?mode=ro", uri=True)
    try:
        (table,) = sqlite.execute(
            "SELECT table_name FROM _ferretdb_collections WHERE name = ?", (collection,)
        ).fetchone()
        # The statement of FerretDB's sqlite backend (metadata.IDColumn) for find/update/delete.
        statement = (
            f'EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM "{table}" '  # noqa: S608 - FerretDB's table
            "WHERE _ferretdb_sjson->'$._id' = ?"
        )
        rows = sqlite.execute(statement, ('"x"',)).fetchall()
        return " ".join(str(row[-1]) for row in rows)
    finally:
        sqlite.close()


def test_ferretdb_lookups_by_id_use_an_index(ferretdb_server: FerretDBServer) -> None:
    """The launcher indexes the `_id` expression FerretDB looks up by (else every find,
    update and delete by `_id` scans the whole table), for tables created after start too."""
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        ferretdb_server.uri, serverSelectionTimeoutMS=5000
    )
    database = f"devstack_plugin_{uuid.uuid4().hex[:12]}"
    try:
        client[database].things.insert_many([{"_id": f"t{n}", "n": n} for n in range(200)])
        deadline = time.monotonic() + 10
        plan = _lookup_plan(ferretdb_server.data_dir, database, "things")
        while "USING INDEX" not in plan and time.monotonic() < deadline:
            time.sleep(0.2)
            plan = _lookup_plan(ferretdb_server.data_dir, database, "things")
        assert "SEARCH" in plan and "USING INDEX" in plan, plan

        # FerretDB still answers, updates and enforces uniqueness as before.
        things = client[database].things
        assert things.find_one({"_id": "t7"}) == {"_id": "t7", "n": 7}
        assert things.find_one({"_id": "missing"}) is None
        things.update_one({"_id": "t7"}, {"$set": {"n": 70}})
        assert things.find_one({"_id": "t7"}) == {"_id": "t7", "n": 70}
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            things.insert_one({"_id": "t8"})
        assert things.delete_one({"_id": "t9"}).deleted_count == 1
        assert things.count_documents({}) == 199
        assert [index["name"] for index in things.list_indexes()] == ["_id_"]
    finally:
        client.drop_database(database)
        client.close()
    # Dropping the database leaves no file behind for the indexer to bring back.
    time.sleep(1.5)
    assert not (ferretdb_server.data_dir / f"{database}.sqlite").exists()
