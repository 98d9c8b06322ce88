"""An explicit, seeded, in-memory network for tests and simulations (STYLE §6).

`SimNetwork(seed=...)` owns every link: nodes `listen(address)` and
`connect(source, address)`, and get `trio.abc.Stream`s whose bytes arrive
after a seeded per-link latency, in order, with TCP-like flow control (a
bounded window per direction). It models what a TCP connection shows to the
code above it: delay, back-pressure, refused connections, and breaks -
partitions (`partition`, `heal`) and crashed nodes (`take_down`, `bring_up`)
break the connections they cut. Packet loss appears as it does over TCP: as
extra delay (retransmissions), never as missing bytes.

Time is trio's clock, so under `MockClock(autojump_threshold=0)` a run of
thousands of simulated seconds takes milliseconds. A receiver sleeps until its
next chunk is due; one system task per network (`_Alarms`) wakes receivers
when their chunks fall due.
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
import random
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import trio

from node.errors import ConfigError
from node.net.conflicts import ConflictDetector

__all__ = ["LinkModel", "LinkModelError", "SimListener", "SimNetwork", "SimStream"]

_DEFAULT_WINDOW = 256 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkModel:
    """How links behave: one-way latency range, loss, and window size."""

    min_latency_s: float = 0.010
    max_latency_s: float = 0.080
    loss: float = 0.0  # probability that a chunk needs one retransmission
    retransmit_s: float = 0.200
    window_bytes: int = _DEFAULT_WINDOW
    # "uniform": each link's latency uniform in [min, max]; "lognormal": median at
    # the middle of the range, long-tailed (sigma 0.5), clipped to [min, 10 x max].
    latency_shape: str = "uniform"
    bandwidth_bytes_per_s: float | None = None  # per connection and direction; None: unlimited
    # Chunks arrive on a grid of this step (rounded up; 0: exactly when due). With
    # every timer in whole milliseconds too, many arrivals fall on one instant and
    # trio handles them in one pass of its run loop (one poll, one clock jump)
    # instead of one pass each: 12 % less wall time for 300 simulated members,
    # and every figure within a millisecond of the exact one.
    resolution_s: float = 0.001

    def __post_init__(self) -> None:
        # `due_time` retransmits while a draw falls under `loss`: at loss >= 1 it
        # never returns, so a bad model is refused here rather than hanging a run.
        _check_range("min_latency_s", self.min_latency_s, 0.0, 3_600.0)
        _check_range("max_latency_s", self.max_latency_s, self.min_latency_s, 3_600.0)
        _check_range("loss", self.loss, 0.0, 0.99)
        _check_range("retransmit_s", self.retransmit_s, 1e-6, 3_600.0)
        _check_range("resolution_s", self.resolution_s, 0.0, 60.0)
        if type(self.window_bytes) is not int or self.window_bytes < 1:
            raise LinkModelError(
                "window_bytes", f"expected a whole number >= 1, got {self.window_bytes!r}"
            )
        if self.latency_shape not in ("uniform", "lognormal"):
            raise LinkModelError(
                "latency_shape", f"expected uniform or lognormal, got {self.latency_shape!r}"
            )
        if self.bandwidth_bytes_per_s is not None:
            _check_range("bandwidth_bytes_per_s", self.bandwidth_bytes_per_s, 1e-3, math.inf)


class LinkModelError(ConfigError, ValueError):
    """A `LinkModel` or `SimNetwork` setting that we refuse; `name` says which."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def _check_range(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LinkModelError(name, f"expected a number, got {value!r}")
    if math.isnan(value) or not low <= value <= high or math.isinf(value):
        raise LinkModelError(
            name, f"expected a finite number from {low:g} to {high:g}, got {value!r}"
        )


class _Alarms:
    """Wakes receivers when their next chunk is due: one timer for a whole network.

    A receiver could sleep in a cancel scope whose deadline is its next chunk's
    (as it did): trio then wakes it by cancelling it, an exception raised and
    caught through its stack, for every chunk of every connection. One task
    that sleeps until the earliest due time and `notify`s every receiver due
    then costs one such wake per instant with arrivals, and with arrivals on
    a 1 ms grid (`LinkModel.resolution_s`) many share an instant.
    """

    def __init__(self) -> None:
        self._due: list[tuple[float, int, _Direction]] = []
        self._order = itertools.count()  # ties wake in the order they were set
        self._timer: trio.CancelScope | None = None
        self._root: trio.lowlevel.Task | None = None

    def set(self, due: float, direction: _Direction) -> None:
        """`notify` `direction` at `due`."""
        heapq.heappush(self._due, (due, next(self._order), direction))
        root = trio.lowlevel.current_root_task()
        if self._root is not root:  # the first alarm of this trio run
            self._root, self._timer = root, None
            trio.lowlevel.spawn_system_task(self._ring, name="simnet alarms")
        elif self._timer is not None and due < self._timer.deadline:
            self._timer.deadline = due

    async def _ring(self) -> None:
        due = self._due
        while True:
            with trio.CancelScope(deadline=due[0][0] if due else math.inf) as self._timer:
                await trio.sleep_forever()
            now = trio.current_time()
            while due and due[0][0] <= now:
                heapq.heappop(due)[2].notify()


@dataclass
class _Direction:
    """Bytes in flight from one end to the other.

    A simulation moves millions of chunks, so nobody is woken for nothing: a
    chunk sent to a waiting receiver sets an alarm for when it is due, instead
    of waking the receiver at once to go back to sleep until then, and
    `notify` wakes only tasks that wait.
    """

    window_bytes: int
    alarms: _Alarms
    chunks: deque[tuple[float, bytes]] = field(default_factory=deque)
    buffered: int = 0
    last_due: float = 0.0
    eof: bool = False
    broken: bool = False
    changed: trio.Event = field(default_factory=trio.Event)
    waiting: int = 0  # tasks in `wait`
    receiving: bool = False  # the receiver waits for the next chunk

    def notify(self) -> None:
        """Wake whoever waits for a change (room in the window, a close, a break)."""
        if self.waiting:
            self.changed.set()
            self.changed = trio.Event()

    async def wait(self) -> None:
        """Until `notify` (or a cancellation)."""
        self.waiting += 1
        try:
            await self.changed.wait()
        finally:
            self.waiting -= 1

    def queue(self, due: float, chunk: bytes) -> None:
        """A chunk to deliver at `due`; the waiting receiver wakes then."""
        if not self.chunks and self.receiving:
            self.alarms.set(due, self)
        self.chunks.append((due, chunk))
        self.buffered += len(chunk)


class SimStream(trio.abc.Stream):
    """One end of a simulated connection."""

    def __init__(
        self, network: SimNetwork, *, local: str, remote: str, out: _Direction, into: _Direction
    ) -> None:
        self._network = network
        self.local = local
        self.remote = remote
        self._out = out
        self._in = into
        self._closed = False
        self._sending = ConflictDetector("sending")
        self._receiving = ConflictDetector("receiving")

    def _check(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("stream closed")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Queue `data` for delivery after the link's latency; blocks on a full window."""
        with self._sending:
            self._check()
            await trio.lowlevel.checkpoint()
            payload = bytes(data)
            while payload:
                await self._wait_for_window()
                room = max(1, self._out.window_bytes - self._out.buffered)
                chunk, payload = payload[:room], payload[room:]
                due = self._network.due_time(
                    self.local, self.remote, self._out.last_due, len(chunk)
                )
                self._out.last_due = due
                self._out.queue(due, chunk)
                self._network.bytes_sent += len(chunk)
                self._network.bytes_received[self.remote] += len(chunk)

    async def _wait_for_window(self) -> None:
        while True:
            self._check()
            if self._out.broken or self._out.eof:
                raise trio.BrokenResourceError("connection broken")
            if self._out.buffered < self._out.window_bytes:
                return
            await self._out.wait()

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the window has room."""
        with self._sending:
            await trio.lowlevel.checkpoint()
            await self._wait_for_window()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The next bytes once they are due; b"" after the peer closed."""
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        with self._receiving:
            self._check()
            # A checkpoint, as trio's streams promise: a cancellation point now,
            # and a schedule point either while waiting below or just before
            # returning (the way trio's memory channels do it).
            await trio.lowlevel.checkpoint_if_cancelled()
            data, waited = await self._receive(max_bytes)
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    async def _receive(self, max_bytes: int | None) -> tuple[bytes, bool]:
        waited = False
        into = self._in
        while True:
            self._check()
            if into.broken:
                raise trio.BrokenResourceError("connection broken")
            deadline = math.inf
            if into.chunks:
                due, chunk = into.chunks[0]
                if due <= trio.current_time():
                    size = len(chunk) if max_bytes is None else min(max_bytes, len(chunk))
                    if size == len(chunk):
                        into.chunks.popleft()
                    else:
                        into.chunks[0] = (due, chunk[size:])
                    into.buffered -= size
                    into.notify()
                    return chunk[:size], waited
                deadline = due
            elif into.eof:
                return b"", waited
            # Until the head chunk is due (a chunk sent meanwhile to an empty
            # queue sets its own alarm: `_Direction.queue`), a close or a break.
            waited = True
            if deadline < math.inf:
                into.alarms.set(deadline, into)
            into.receiving = True
            try:
                await into.wait()
            finally:
                into.receiving = False

    async def aclose(self) -> None:
        """Close our end; the peer reads what was sent, then b"" (after the latency)."""
        if not self._closed:
            self._closed = True
            self._out.eof = True
            self._out.notify()
            self._in.broken = True  # nothing more is read on our side
            self._in.notify()
        await trio.lowlevel.checkpoint()

    def break_(self) -> None:
        """Break both directions (a partition or a crash cut this connection)."""
        for direction in (self._out, self._in):
            direction.broken = True
            direction.notify()


class SimListener(trio.abc.Listener[trio.abc.Stream]):
    """Connections made to one address."""

    def __init__(self, network: SimNetwork, address: str) -> None:
        self._network = network
        self.address = address
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](1024)

    async def accept(self) -> trio.abc.Stream:
        """The next incoming connection."""
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise trio.ClosedResourceError("listener closed") from None

    async def aclose(self) -> None:
        """Stop listening."""
        self._network.forget(self.address)
        await self._receive.aclose()


class SimNetwork:
    """A seeded network: addresses, links with latency and loss, partitions, churn."""

    def __init__(self, *, seed: int, model: LinkModel | None = None) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise LinkModelError("seed", f"expected a whole number, got {seed!r}")
        if model is not None and not isinstance(model, LinkModel):
            raise LinkModelError("model", f"expected a LinkModel, got {type(model).__name__}")
        self._rng = random.Random(seed)  # noqa: S311  # simulation, not secrets
        self.model = model if model is not None else LinkModel()
        self._latency: dict[tuple[str, str], float] = {}
        self._listeners: dict[str, SimListener] = {}
        self._streams: list[SimStream] = []
        self._groups: list[frozenset[str]] | None = None
        self._down: set[str] = set()
        self._nat: dict[str, str] = {}  # address -> the public host its connections leave from
        self._nat_ports = itertools.count(40000)
        self._alarms = _Alarms()
        self.bytes_sent = 0
        self.bytes_received: Counter[str] = Counter()  # by the address of the receiving end
        self.seed = seed

    def listen(self, address: str) -> SimListener:
        """Start accepting connections at `address`."""
        if address in self._listeners:
            raise OSError(f"{address} is already in use")
        listener = SimListener(self, address)
        self._listeners[address] = listener
        return listener

    def forget(self, address: str) -> None:
        """Called by a closing listener."""
        self._listeners.pop(address, None)

    def reachable(self, source: str, target: str) -> bool:
        """Whether packets can flow between two addresses now."""
        if source in self._down or target in self._down:
            return False
        if self._groups is None:
            return True
        return any(source in g and target in g for g in self._groups)

    async def connect(self, source: str, address: str) -> SimStream:
        """Open a connection from `source` to a listening `address` (one RTT later).

        Raises:
            OSError: nobody listens there, or it is unreachable.
        """
        await trio.sleep(2 * self._link_latency(source, address))
        listener = self._listeners.get(address)
        if listener is None or not self.reachable(source, address):
            raise ConnectionRefusedError(f"{source} cannot reach {address}")
        home = self._nat.get(address)
        if home is not None and self._nat.get(source) != home:
            raise ConnectionRefusedError(f"{address} is behind a NAT: {source} cannot dial in")
        seen_from = source
        if (public := self._nat.get(source)) is not None and public != home:
            seen_from = f"{public}:{next(self._nat_ports)}"  # a fresh mapping per connection
        forward = _Direction(self.model.window_bytes, self._alarms)
        backward = _Direction(self.model.window_bytes, self._alarms)
        client = SimStream(self, local=source, remote=address, out=forward, into=backward)
        server = SimStream(self, local=address, remote=seen_from, out=backward, into=forward)
        self._streams += [client, server]
        listener._send.send_nowait(server)
        return client

    def _link_latency(self, a: str, b: str) -> float:
        key = (min(a, b), max(a, b))
        if key not in self._latency:
            low, high = self.model.min_latency_s, self.model.max_latency_s
            if self.model.latency_shape == "lognormal":
                drawn = self._rng.lognormvariate(math.log((low + high) / 2), 0.5)
                self._latency[key] = min(max(drawn, low), 10 * high)
            else:
                self._latency[key] = self._rng.uniform(low, high)
        return self._latency[key]

    def due_time(self, source: str, target: str, last_due: float, size: int = 0) -> float:
        """When a chunk of `size` bytes sent now arrives: latency, retransmissions,
        the time to put it on a capped link, in order."""
        delay = self._link_latency(source, target)
        while self.model.loss and self._rng.random() < self.model.loss:
            delay += self.model.retransmit_s
        due = max(trio.current_time() + delay, last_due)
        if self.model.bandwidth_bytes_per_s:
            due += size / self.model.bandwidth_bytes_per_s
        if step := self.model.resolution_s:
            # A time already on the grid stays there despite float rounding.
            due = math.ceil(due / step - 1e-6) * step
        return due

    def put_behind_nat(self, address: str, public_host: str) -> None:
        """`address` sits behind a NAT whose public side is `public_host`.

        Its connections reach others as coming from `public_host:<port>`, a
        fresh port per connection (a port-restricted NAT's mapping, as the
        far end sees it), and nobody but the members behind the same NAT can
        connect to it: a home router without port forwarding."""
        self._nat[address] = public_host

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Split the network; connections between groups break."""
        self._groups = [frozenset(g) for g in groups]
        self._cut()

    def heal(self) -> None:
        """End every partition (broken connections stay broken: reconnect)."""
        self._groups = None

    def take_down(self, address: str) -> None:
        """A node crashes: its connections break and it is unreachable."""
        self._down.add(address)
        self._cut()

    def bring_up(self, address: str) -> None:
        """The node is reachable again."""
        self._down.discard(address)

    def _cut(self) -> None:
        alive = []
        for stream in self._streams:
            if self.reachable(stream.local, stream.remote):
                alive.append(stream)
            else:
                stream.break_()
        self._streams = alive
