import time

import pytest

from surveil.errors import StreamError
from surveil.stream.packet import decode_packet, encode_packet
from surveil.stream.transport import Publisher, Subscriber
from surveil.types import BackgroundKey, StreamEnd

ANY_PORT = "tcp://127.0.0.1:*"  # ZeroMQ picks a free port; Publisher.endpoint says which


def _drain(sub: Subscriber, timeout_s: float = 0.3) -> list[list[bytes]]:
    got = []
    while (parts := sub.recv(timeout_s)) is not None:
        got.append(parts)
    return got


def test_send_and_receive_identical_parts() -> None:
    packet = BackgroundKey("cam1", 3, 0.12, 1, 64, 48, "libx264", bytes(range(256)) * 400)  # above zero-copy threshold
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint) as sub:
        assert pub.endpoint.startswith("tcp://127.0.0.1:")
        assert pub.wait_for_subscriber(5.0)
        parts = encode_packet(packet)
        pub.send(parts)
        pub.send([b"cam1/raw", b"", b"x"])
        assert sub.recv(5.0) == parts
        assert sub.recv(5.0) == [b"cam1/raw", b"", b"x"]
        assert decode_packet(parts) == packet


def test_topic_prefix_filtering() -> None:
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint, ["cam1/obj/person", "cam1/bg"]) as sub:
        assert pub.wait_for_subscriber(5.0, topic="cam1/obj/person")
        start = time.monotonic()
        assert pub.wait_for_subscriber(5.0, topic="cam1/bg")
        assert pub.wait_for_subscriber(5.0)
        assert time.monotonic() - start < 1.0  # subscriptions already seen answer at once
        assert not pub.wait_for_subscriber(0.0, topic="cam1/obj/face")
        sent = [
            [b"cam1/obj/face", b"1"],
            [b"cam1/obj/person", b"2"],
            [b"cam2/bg", b"3"],
            [b"cam1/frame", b"4"],
            [b"cam1/bg", b"5"],
            [b"cam1/obj/face", b"6"],
            [b"cam1/obj/person", b"7"],
        ]
        for parts in sent:
            pub.send(parts)
        got = _drain(sub)
    assert got == [[b"cam1/obj/person", b"2"], [b"cam1/bg", b"5"], [b"cam1/obj/person", b"7"]]


def test_subscribe_to_everything() -> None:
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint) as sub:
        assert pub.wait_for_subscriber(5.0, topic="anything/at/all")
        for topic in (b"a/bg", b"b/frame"):
            pub.send([topic, b""])
        assert [p[0] for p in _drain(sub)] == [b"a/bg", b"b/frame"]


def test_recv_timeout_returns_none() -> None:
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint) as sub:
        assert pub.wait_for_subscriber(5.0)
        start = time.monotonic()
        assert sub.recv(0.2) is None
        assert 0.15 < time.monotonic() - start < 2.0


def test_wait_for_subscriber_times_out_without_one() -> None:
    with Publisher(ANY_PORT) as pub:
        start = time.monotonic()
        assert not pub.wait_for_subscriber(0.2)
        assert 0.15 < time.monotonic() - start < 2.0
        pub.send(encode_packet(StreamEnd("cam1", 0, 0.0)))  # no subscriber: dropped, never blocks


def test_send_never_blocks_at_high_water_mark() -> None:
    with Publisher(ANY_PORT, hwm=10) as pub, Subscriber(pub.endpoint) as sub:
        assert pub.wait_for_subscriber(5.0)
        start = time.monotonic()
        for i in range(5000):
            pub.send([b"cam1/bg", bytes(1000), str(i).encode()])
        assert time.monotonic() - start < 3.0
        assert sub.recv(5.0) is not None
        pub.close(linger_s=0)


def test_close_flushes_queued_messages() -> None:
    # Enough data that much of it is still queued when close() is called; without a linger it would be lost.
    n, size = 900, 20_000
    pub = Publisher(ANY_PORT, hwm=2 * n)
    try:
        sub = Subscriber(pub.endpoint)
        assert pub.wait_for_subscriber(5.0)
        for i in range(n):
            pub.send([b"cam1/bg", str(i).encode(), bytes(size)])
    finally:
        pub.close()
    with sub:
        got = _drain(sub)
    assert [int(p[1]) for p in got] == list(range(n))


def test_closed_sockets_raise() -> None:
    pub = Publisher(ANY_PORT)
    sub = Subscriber(pub.endpoint)
    pub.close()
    sub.close()
    pub.close()
    sub.close()
    with pytest.raises(StreamError, match="closed"):
        pub.send([b"x"])
    with pytest.raises(StreamError, match="closed"):
        sub.recv(0.0)


@pytest.mark.parametrize("address", ["localhost:5555", "tcp://", "nope://x", "tcp://256.1.1.1:5555"])
def test_bad_publisher_address(address: str) -> None:
    with pytest.raises(StreamError, match="cannot bind publisher"):
        Publisher(address)


def test_address_in_use() -> None:
    with Publisher(ANY_PORT) as pub, pytest.raises(StreamError, match="cannot bind publisher"):
        Publisher(pub.endpoint)


@pytest.mark.parametrize("address", ["localhost:5555", "nope://x"])
def test_bad_subscriber_address(address: str) -> None:
    with pytest.raises(StreamError, match="cannot connect subscriber"):
        Subscriber(address)
