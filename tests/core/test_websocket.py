import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application


@pytest.mark.django_db(transaction=True)
async def test_health_stream_refuses_anonymous_clients():
    communicator = WebsocketCommunicator(application, "/ws/health/", headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")])
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4401
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_health_stream_pushes_readiness_to_signed_in_users():
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = await sync_to_async(get_user_model().objects.create_user)("watcher", password="pw-for-tests-123")
    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application, "/ws/health/",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)],
    )
    connected, _ = await communicator.connect()
    assert connected
    message = await communicator.receive_json_from(timeout=10)
    assert message["ready"] is True
    assert message["checks"]["database"]["status"] == "ok"
    await communicator.disconnect()
    # the consumer's database thread keeps its connection; close it so the test database can be dropped
    from channels.db import database_sync_to_async
    from django.db import connections

    await database_sync_to_async(connections.close_all)()
