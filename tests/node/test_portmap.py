"""UPnP-IGD port mapping (node/net/portmap.py) against a scripted router, on trio's MockClock.

What a real router does with it is `tests/e2e/test_portmap_igd.py` (miniupnpd in
a network namespace); here: renewal at half the lease, retries, a lost mapping
said to be lost, the mapping deleted when the node stops, no retry loop
without the library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
import trio
import trio.testing

from node.net.portmap import IgdClient, Mapping, PortMapConfig, PortMapper

T = TypeVar("T")
CONFIG = PortMapConfig(lease_s=600, discover_ms=100, retry_s=60.0)


async def inline(call: Callable[[], T]) -> T:
    """The blocking calls, run in the test's task: a MockClock cannot wait for a thread."""
    await trio.lowlevel.checkpoint()
    return call()


def current(mapper: PortMapper) -> Mapping | None:
    """`mapper.mapping`, read afresh (mypy keeps an earlier assertion's narrowing)."""
    return mapper.mapping


@dataclass
class Router:
    """A scripted IGD: what each call of a client made from it answers."""

    devices: int = 1
    refuse: bool = False
    wan: str = "198.51.100.7"
    added: list[tuple[int, str, str, int, str, str, int]] = field(default_factory=list)
    deleted: list[tuple[int, str]] = field(default_factory=list)

    def client(self) -> IgdClient:
        return _Client(self)


class _Client:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.lanaddr = ""
        self.discoverdelay = 0

    def discover(self) -> int:
        return self.router.devices

    def selectigd(self) -> str:
        self.lanaddr = "192.168.1.20"
        return "http://192.168.1.1:5000/rootDesc.xml"

    def externalipaddress(self) -> str:
        return self.router.wan

    def addportmapping(self, eport: int, proto: str, iaddr: str, iport: int, desc: str,
                       rhost: str, lease: int) -> bool:  # fmt: skip
        if self.router.refuse:
            raise Exception("ConflictInMappingEntry")  # what miniupnpc raises: bare
        self.router.added.append((eport, proto, iaddr, iport, desc, rhost, lease))
        return True

    def deleteportmapping(self, eport: int, proto: str) -> bool:
        self.router.deleted.append((eport, proto))
        return True


async def test_maps_the_listening_port_renews_at_half_the_lease_and_deletes_on_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    router = Router()
    heard: list[Mapping | None] = []
    mapper = PortMapper(7400, client=router.client, config=CONFIG, mapped=heard.append,
                        blocking=inline)  # fmt: skip
    async with trio.open_nursery() as nursery:
        nursery.start_soon(mapper.run)
        await trio.sleep(CONFIG.lease_s * 1.6)  # at 0, 300, 600 and 900 s
        mapping = Mapping(external="198.51.100.7:7400", internal="192.168.1.20:7400")
        assert mapper.mapping == mapping
        nursery.cancel_scope.cancel()
    assert router.added == [(7400, "TCP", "192.168.1.20", 7400, "trustnode", "", 600)] * 4
    assert heard == [mapping]  # told once: the renewals changed nothing
    assert router.deleted == [(7400, "TCP")]
    assert mapper.mapping is None


async def test_no_router_is_retried_and_a_mapping_that_cannot_be_renewed_is_said_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    router = Router(devices=0)
    heard: list[Mapping | None] = []
    mapper = PortMapper(7400, client=router.client, config=CONFIG, mapped=heard.append,
                        blocking=inline)  # fmt: skip
    async with trio.open_nursery() as nursery:
        nursery.start_soon(mapper.run)
        await trio.sleep(CONFIG.retry_s * 2.5)  # tries at 0, 60 and 120 s: no router
        assert (mapper.failures, mapper.mapping, heard) == (3, None, [])
        router.devices = 1  # the router comes up: mapped at the next try
        await trio.sleep(CONFIG.retry_s)
        assert mapper.mapping is not None
        assert heard == [mapper.mapping]
        router.refuse = True  # the renewal is refused (another host took the port)
        await trio.sleep(CONFIG.lease_s / 2)
        assert (current(mapper), heard[-1], mapper.failures) == (None, None, 4)
        nursery.cancel_scope.cancel()
    assert router.deleted == []  # nothing of ours left to delete


async def test_without_miniupnpc_it_says_so_once_and_stops(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    def missing() -> IgdClient:
        raise ImportError("No module named 'miniupnpc'")

    mapper = PortMapper(7400, client=missing, config=CONFIG, blocking=inline)
    with trio.fail_after(1):  # returns: no retry loop
        await mapper.run()
    assert "trustnode[portmap]" in caplog.text
    assert mapper.mapping is None


@pytest.mark.parametrize("wan", ["", "not an address", "198.51.100.7:80", "::1", "1.2.3.4\n"])
async def test_a_wan_address_that_is_not_an_ipv4_address_makes_no_mapping(
    autojump_clock: trio.testing.MockClock, wan: str
) -> None:
    router = Router(wan=wan)
    mapper = PortMapper(7400, client=router.client, config=CONFIG, blocking=inline)
    with trio.move_on_after(CONFIG.retry_s / 2):
        await mapper.run()
    assert (mapper.mapping, mapper.failures, router.added) == (None, 1, [])


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_a_port_outside_1_65535_is_refused(port: int) -> None:
    with pytest.raises(ValueError, match="port"):
        PortMapper(port)


class _SlowRouter(Router):
    """A router whose answer to the mapping request comes when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = threading.Event()
        self.answer = threading.Event()
        self.gone = threading.Event()

    def client(self) -> IgdClient:
        return _SlowClient(self)

    def live(self) -> list[tuple[int, str]]:
        """The mappings the router still forwards."""
        live = [(a[0], a[1]) for a in self.added]
        for gone in self.deleted:
            live.remove(gone)
        return live


class _SlowClient(_Client):
    router: _SlowRouter

    def addportmapping(self, eport: int, proto: str, iaddr: str, iport: int, desc: str,
                       rhost: str, lease: int) -> bool:  # fmt: skip
        self.router.asked.set()
        self.router.answer.wait(10)
        return super().addportmapping(eport, proto, iaddr, iport, desc, rhost, lease)

    def deleteportmapping(self, eport: int, proto: str) -> bool:
        answer = super().deleteportmapping(eport, proto)
        self.router.gone.set()
        return answer


async def _stop_while_mapping(router: _SlowRouter, *, answer_after_s: float) -> PortMapper:
    """Run a mapper on real worker threads; stop it while the router has not yet
    answered the mapping request, which it answers `answer_after_s` later."""
    mapper = PortMapper(7400, client=router.client, config=CONFIG)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(mapper.run)
            await trio.to_thread.run_sync(router.asked.wait)
            threading.Timer(answer_after_s, router.answer.set).start()
            nursery.cancel_scope.cancel()
    return mapper


@pytest.mark.slow
async def test_a_mapping_the_router_grants_while_we_stop_is_deleted_before_we_return() -> None:
    router = _SlowRouter()
    mapper = await _stop_while_mapping(router, answer_after_s=0.2)
    assert router.added  # the router granted it after we had stopped waiting ...
    assert router.live() == []  # ... and it was deleted, not left for the lease's hour
    assert mapper.mapping is None


@pytest.mark.slow
async def test_a_mapping_granted_after_the_stop_gave_up_waiting_is_deleted_by_its_thread() -> None:
    router = _SlowRouter()
    # Past the stop's bound (the discovery timeout + 1 s, at least 1 s): we return first.
    with trio.fail_after(5):
        await _stop_while_mapping(router, answer_after_s=2.5)
    assert router.added == []
    await trio.to_thread.run_sync(router.gone.wait, 10)
    assert len(router.added) == 1
    assert router.live() == []
