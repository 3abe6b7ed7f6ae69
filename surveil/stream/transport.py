"""ZeroMQ publish/subscribe of multipart packets, filtered by topic prefix.

The publisher binds an XPUB socket, which behaves like PUB (never blocks; messages to a subscriber whose queue is at
the high-water mark are dropped) but also reports subscriptions, so an encoder can wait until someone listens.
Sockets are not thread-safe: use each Publisher/Subscriber from one thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import zmq

from surveil.errors import StreamError

logger = logging.getLogger(__name__)

CLOSE_LINGER_MS = 3000  # how long close() keeps trying to deliver queued messages


def _address_error(action: str, address: str, e: zmq.ZMQError) -> StreamError:
    return StreamError(
        f"cannot {action} {address!r}: {e.strerror} (expected e.g. tcp://127.0.0.1:5555 or ipc:///tmp/x)"
    )


class Publisher:
    """Publishes multipart packets on ``address`` (e.g. ``tcp://*:5555``)."""

    def __init__(self, address: str, hwm: int = 1000, context: zmq.Context | None = None) -> None:
        self.address = address
        self._own_context = context is None
        self._context = zmq.Context() if context is None else context
        self._socket: zmq.Socket | None = self._context.socket(zmq.XPUB)
        self._subscriptions = 0  # subscription messages seen so far (unsubscriptions not subtracted)
        self._prefixes: set[bytes] = set()  # topic prefixes currently subscribed
        try:
            self._socket.setsockopt(zmq.SNDHWM, hwm)
            self._socket.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
            self._socket.bind(address)
        except zmq.ZMQError as e:
            self.close(linger_s=0)
            raise _address_error("bind publisher to", address, e) from None
        # With a wildcard or port 0 the bound endpoint differs from what was asked for.
        self.endpoint: str = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        logger.debug("publisher bound to %s", self.endpoint)

    def send(self, parts: Sequence[bytes]) -> None:
        """Queue one multipart message; never blocks (dropped for subscribers whose queue is full)."""
        if self._socket is None:
            raise StreamError(f"publisher on {self.address} is closed")
        try:
            self._socket.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            logger.debug("publisher on %s dropped a message: queue full", self.address)

    def _drain_subscriptions(self, timeout_ms: int) -> None:
        """Read subscription messages that arrived, waiting up to ``timeout_ms`` for the first."""
        assert self._socket is not None
        while self._socket.poll(timeout_ms, zmq.POLLIN):
            message = self._socket.recv()
            timeout_ms = 0
            if not message:
                continue
            if message[0] == 1:
                self._subscriptions += 1
                self._prefixes.add(message[1:])
            elif message[0] == 0:
                self._prefixes.discard(message[1:])

    def wait_for_subscriber(self, timeout_s: float, topic: str | None = None) -> bool:
        """Wait until a subscription arrives (one that covers ``topic``, if given); False on timeout."""
        if self._socket is None:
            raise StreamError(f"publisher on {self.address} is closed")
        wanted = None if topic is None else topic.encode("utf-8")
        deadline = time.monotonic() + max(0.0, timeout_s)
        wait_ms = 0  # first take what has already arrived
        while True:
            self._drain_subscriptions(wait_ms)
            if wanted is None and self._subscriptions:
                return True
            if wanted is not None and any(wanted.startswith(prefix) for prefix in self._prefixes):
                return True
            wait_ms = round((deadline - time.monotonic()) * 1000)
            if wait_ms <= 0:
                return False

    def close(self, linger_s: float | None = None) -> None:
        """Close, delivering queued messages for up to ``linger_s`` (default a few seconds); idempotent."""
        if self._socket is not None:
            linger_ms = CLOSE_LINGER_MS if linger_s is None else max(0, round(linger_s * 1000))
            self._socket.close(linger=linger_ms)
            self._socket = None
            if self._own_context:
                self._context.term()  # returns once queued messages are sent or the linger expires

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Subscriber:
    """Receives multipart packets from a publisher at ``address`` whose topics start with one of ``topics``."""

    def __init__(self, address: str, topics: list[str] | None = None, context: zmq.Context | None = None) -> None:
        self.address = address
        self._own_context = context is None
        self._context = zmq.Context() if context is None else context
        self._socket: zmq.Socket | None = self._context.socket(zmq.SUB)
        try:
            self._socket.setsockopt(zmq.LINGER, 0)
            self._socket.connect(address)
        except zmq.ZMQError as e:
            self.close()
            raise _address_error("connect subscriber to", address, e) from None
        for topic in [""] if topics is None else topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode("utf-8"))

    def recv(self, timeout_s: float) -> list[bytes] | None:
        """The next multipart message, or None if none arrives within ``timeout_s``."""
        if self._socket is None:
            raise StreamError(f"subscriber to {self.address} is closed")
        if not self._socket.poll(max(0, round(timeout_s * 1000)), zmq.POLLIN):
            return None
        return self._socket.recv_multipart()

    def close(self) -> None:
        """Close; idempotent."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
            if self._own_context:
                self._context.term()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
