"""Buy an 8-GPU H100 server or rent the GPU-hours: 3-year cost of ownership and break-even.

Owning costs the same whether the GPUs work or idle, except the electricity:

- capex, depreciated straight-line over the 3 years the server is worth using;
- hosting: colocation billed per contracted kW per month (the server's 10.2 kW maximum,
  NVIDIA's DGX H100 figure);
- operations: a share of the staff who run it, per year;
- energy: kW drawn x PUE (the facility's overhead on every IT kW: Uptime Institute's
  industry average 1.58 in 2023) x hours x $/kWh, where the draw moves between an idle and
  a busy share of the maximum with the utilization u.

Renting on demand costs only the GPU-hours used: rent x GPUs x hours x u. The comparison
must be at the SAME useful GPU-hours: owned cost per useful GPU-hour is TCO(u) / (GPUs x
hours x u), which grows as 1/u. With TCO(u) = F + E0 + E1 u (F fixed, E0 the idle energy,
E1 the extra energy of work), buying wins above the break-even utilization
u* = (F + E0) / (rent x GPUs x hours - E1); at u* both cost the same. The checks redo the
energy term and the TCO by hand, hold the per-hour cost to useful hours, and find u* with a
scan of u. Capex, hosting, staff, electricity price and the load shares are stated inputs,
not published figures; the power and PUE are published.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand
HOURS_PER_YEAR = 8760.0
ENERGY_CHECK = "energy = kW x load x PUE x hours x $/kWh, 3 hand cases (tolerance used)"
TCO_CHECK = (
    "3-year TCO = capex + hosting + staff + energy, by hand at u = 0, 0.5, 1 (tolerance used)"
)
PER_HOUR_CHECK = "owned $ per USEFUL GPU-hour = TCO / (GPUs x hours x u), by hand (tolerance used)"
BREAK_EVEN_CHECK = (
    "break-even utilization: closed form vs a scan of u, 5 rent prices (tolerance used)"
)
EQUAL_CHECK = "owned TCO = rent x useful GPU-hours at the break-even (tolerance used)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = (
    "energy_cost",
    "owned_tco",
    "cost_per_useful_gpu_hour",
    "break_even_utilization",
)

# -----------------------------------------------------------------------------
# The answer: what owning costs, per useful GPU-hour, and where renting stops paying


def energy_cost(
    max_kw: float, average_load: float, pue: float, usd_per_kwh: float, hours: float
) -> float:
    """USD of electricity for a server of ``max_kw`` kW maximum input drawing
    ``average_load`` (0..1) of it for ``hours`` hours, in a facility of power usage
    effectiveness ``pue`` (facility kW per IT kW), at ``usd_per_kwh`` USD per kWh."""
    it_kwh = max_kw * average_load * hours  # kW x h = kWh: the power is a rate
    return it_kwh * pue * usd_per_kwh  # cooling and conversion losses on every IT kWh


def owned_tco(
    capex_usd: float,
    years: float,
    max_kw: float,
    idle_load: float,
    busy_load: float,
    utilization: float,
    pue: float,
    usd_per_kwh: float,
    colo_usd_per_kw_month: float,
    ops_usd_per_year: float,
) -> float:
    """USD to own and run one server for ``years`` years at ``utilization`` (0..1, the
    share of hours its GPUs do useful work).

    capex_usd: purchase price (USD), depreciated to zero over the years; max_kw: kW maximum
    input, also the contracted hosting power; idle_load, busy_load: shares (0..1) of max_kw
    drawn idle and busy; pue: facility kW per IT kW; usd_per_kwh: USD per kWh;
    colo_usd_per_kw_month: USD per contracted kW per month; ops_usd_per_year: USD per year.
    """
    hours = years * HOURS_PER_YEAR
    load = idle_load + (busy_load - idle_load) * utilization  # average share of max_kw
    hosting = colo_usd_per_kw_month * max_kw * 12.0 * years  # paid for capacity, used or not
    energy = energy_cost(max_kw, load, pue, usd_per_kwh, hours)
    return capex_usd + hosting + ops_usd_per_year * years + energy


def cost_per_useful_gpu_hour(tco_usd: float, gpus: int, years: float, utilization: float) -> float:
    """USD per GPU-hour of useful work: the TCO over the GPU-hours actually used, not over
    every hour the server exists (idle hours are paid for too)."""
    return tco_usd / (gpus * years * HOURS_PER_YEAR * utilization)


def break_even_utilization(
    capex_usd: float,
    years: float,
    max_kw: float,
    idle_load: float,
    busy_load: float,
    pue: float,
    usd_per_kwh: float,
    colo_usd_per_kw_month: float,
    ops_usd_per_year: float,
    gpus: int,
    rent_usd_per_gpu_hour: float,
) -> float:
    """Utilization above which owning is cheaper than renting the same useful GPU-hours at
    ``rent_usd_per_gpu_hour`` USD; ``math.inf`` when renting is cheaper at any
    utilization. Above 1, buying loses even at full use."""
    hours = years * HOURS_PER_YEAR
    # TCO(u) = fixed + idle energy + u x extra energy of work; rent(u) = u x rent x GPU-hours
    fixed = capex_usd + colo_usd_per_kw_month * max_kw * 12.0 * years + ops_usd_per_year * years
    idle = energy_cost(max_kw, idle_load, pue, usd_per_kwh, hours)
    work = energy_cost(max_kw, busy_load - idle_load, pue, usd_per_kwh, hours)
    rent = rent_usd_per_gpu_hour * gpus * hours
    return (fixed + idle) / (rent - work) if rent > work else math.inf


# -----------------------------------------------------------------------------
# The harness: the server, the site, the rent prices, hand sums and a scan


class Answer(Protocol):
    """The ANSWER functions, as check() calls them (signatures above)."""

    energy_cost: Callable[[float, float, float, float, float], float]
    owned_tco: Callable[..., float]
    cost_per_useful_gpu_hour: Callable[[float, int, float, float], float]
    break_even_utilization: Callable[..., float]


@dataclass(frozen=True)
class Server:
    """One 8x H100 server and where it runs. Published: max_kw (NVIDIA DGX H100), pue
    (Uptime Institute 2023 average); the rest are stated inputs."""

    gpus: int = 8
    max_kw: float = 10.2  # kW, DGX H100 maximum system power
    pue: float = 1.58  # facility kW per IT kW
    capex_usd: float = 250_000.0  # assumed: 8x H100 server with networking, USD
    years: float = 3.0  # depreciation and comparison horizon
    idle_load: float = 0.25  # assumed share of 10.2 kW drawn with the GPUs idle
    busy_load: float = 0.80  # assumed share of 10.2 kW drawn under training load
    usd_per_kwh: float = 0.10  # assumed, USD per kWh
    colo_usd_per_kw_month: float = 150.0  # assumed colocation, USD per kW-month
    ops_usd_per_year: float = 10_000.0  # assumed: one $200k engineer across 20 servers

    def tco(self, impl: Answer, u: float) -> float:
        return impl.owned_tco(
            self.capex_usd, self.years, self.max_kw, self.idle_load, self.busy_load, u,
            self.pue, self.usd_per_kwh, self.colo_usd_per_kw_month, self.ops_usd_per_year,
        )  # fmt: skip

    def break_even(self, impl: Answer, rent: float) -> float:
        return impl.break_even_utilization(
            self.capex_usd, self.years, self.max_kw, self.idle_load, self.busy_load,
            self.pue, self.usd_per_kwh, self.colo_usd_per_kw_month, self.ops_usd_per_year,
            self.gpus, rent,
        )  # fmt: skip


@dataclass(frozen=True)
class Scenarios:
    server: Server
    rents: tuple[tuple[str, float], ...]  # (label, USD per GPU-hour)


def make_data(seed: int = SEED) -> Scenarios:
    """The server and five rent prices: two AWS figures (per GPU-hour of a p5.48xlarge,
    8x H100) and three stated on-demand prices. ``seed`` changes nothing."""
    return Scenarios(
        server=Server(),
        rents=(
            ("$2.00 (stated)", 2.00),
            ("$2.50 (stated)", 2.50),
            ("$3.00 (stated)", 3.00),
            ("AWS Capacity Blocks $4.916", 39.33 / 8),
            ("AWS p5 on-demand $98.32/8", 98.32 / 8),
        ),
    )


def scan_break_even(impl: Answer, server: Server, rent: float) -> float:
    """The utilization where owning starts to win, by walking u over 0..2 in steps of 1e-4
    with the candidate's TCO and interpolating inside the step where the sign flips."""

    def gap(u: float) -> float:  # owned minus rented, the same useful GPU-hours
        return server.tco(impl, u) - rent * server.gpus * server.years * HOURS_PER_YEAR * u

    gaps = [gap(i * 1e-4) for i in range(20_001)]  # u = 0, 1e-4, ..., 2
    for i in range(1, len(gaps)):
        if (gaps[i] > 0) != (gaps[i - 1] > 0):  # the sign flips inside this step:
            # the gap is a straight line in u over one step, so interpolate to its zero
            return (i - 1) * 1e-4 + 1e-4 * gaps[i - 1] / (gaps[i - 1] - gaps[i])
    return math.inf


def check(impl: Answer) -> SolutionReport:
    """Energy and TCO by hand, cost per useful GPU-hour, break-even against a scan."""
    report = SolutionReport(solution="strategy.gpu_buy_vs_rent")
    data = make_data()
    _energy_and_tco(report, impl, data.server)
    _break_even(report, impl, data)
    return report


def _energy_and_tco(report: SolutionReport, impl: Answer, s: Server) -> None:
    cases = ((10.2, 1.0, 1.58, 0.10, 8760.0), (10.2, 0.8, 1.58, 0.10, 26280.0),
             (10.2, 0.25, 1.2, 0.15, 730.0))  # fmt: skip
    got = [impl.energy_cost(*c) for c in cases]
    by_hand = [10.2 * 1.0 * 8760 * 1.58 * 0.10, 10.2 * 0.8 * 26280 * 1.58 * 0.10,
               10.2 * 0.25 * 730 * 1.2 * 0.15]  # fmt: skip
    report.check_close(
        ENERGY_CHECK,
        compare(got, by_hand, atol=1e-9, rtol=EXACT),
        "kW x hours gives kWh, x PUE the facility's kWh, x $/kWh: the same float64 product "
        "(1e-9). Leaving out PUE bills 1/1.58 = 63 % of it; pricing the kW rating as if it "
        "were kWh per month drops the 730 hours of a month (730x too small)",
    )
    tcos = [s.tco(impl, u) for u in (0.0, 0.5, 1.0)]
    fixed = 250_000 + 150 * 10.2 * 12 * 3 + 10_000 * 3  # capex + hosting + staff
    per_load = 10.2 * 26280 * 1.58 * 0.10  # energy of 3 years at 100 % of 10.2 kW
    hand = [fixed + per_load * (0.25 + 0.55 * u) for u in (0.0, 0.5, 1.0)]
    report.check_close(
        TCO_CHECK,
        compare(tcos, hand, atol=1e-6, rtol=EXACT),
        "$250,000 + $150 x 10.2 kW x 36 months + $10,000 x 3 + energy at 25 % + 55 % x u of "
        "10.2 kW (1e-9); a TCO without power misses $10.6k-$33.9k, one that forgets hosting "
        "$55k",
    )
    us = (0.25, 0.5, 1.0)
    per_hour = [impl.cost_per_useful_gpu_hour(hand[2], 8, 3.0, u) for u in us]
    report.check_close(
        PER_HOUR_CHECK,
        compare(per_hour, [hand[2] / (8 * 26280 * u) for u in us], atol=1e-12, rtol=EXACT),
        "the 3-year TCO over 8 GPUs x 26,280 h x u useful hours (1e-9); dividing by all "
        "26,280 h (the server at 100 %) prices a GPU-hour at 25 % use 4x too cheap",
    )
    report.metric("3-year TCO at u = 0 / 0.5 / 1", " / ".join(f"{t:,.0f}" for t in tcos), "USD")
    report.metric(
        "TCO parts: capex, hosting, staff, energy at u = 0.7",
        f"250,000, {150 * 10.2 * 36:,.0f}, 30,000, {per_load * (0.25 + 0.55 * 0.7):,.0f}",
        "USD",
    )
    report.metric("energy per year at full draw, 10.2 kW x 8760 h x 1.58", f"{got[0]:,.0f}", "USD")
    for u in (1.0, 0.7, 0.5, 0.3):
        cost = impl.cost_per_useful_gpu_hour(s.tco(impl, u), s.gpus, s.years, u)
        report.metric(f"owned cost per useful GPU-hour at u = {u:.0%}", f"{cost:.2f}", "USD")


def _break_even(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    s = data.server
    closed, scanned, owned, rented = [], [], [], []
    for label, rent in data.rents:
        u = s.break_even(impl, rent)
        closed.append(u if math.isfinite(u) else -1.0)
        sc = scan_break_even(impl, s, rent)
        scanned.append(sc if math.isfinite(sc) else -1.0)
        if math.isfinite(u) and u > 0:
            owned.append(s.tco(impl, u))
            rented.append(rent * s.gpus * s.years * HOURS_PER_YEAR * u)
        shown = f"{u:.1%}" if u <= 1.0 else f"never (needs {u:.0%})"
        report.metric(f"break-even utilization vs rent {label}/GPU-h", shown)
    report.check_close(
        BREAK_EVEN_CHECK,
        compare(closed, scanned, atol=0.0, rtol=1e-6),
        "the scan walks u in steps of 1e-4 with the candidate's own TCO and interpolates in the "
        "step where owning starts to win (exact for a TCO linear in u), so 1e-6; a "
        "break-even that counts the energy at full draw as a fixed cost lands up to 6 % off",
    )
    report.check_close(
        EQUAL_CHECK,
        compare(owned, rented, atol=1e-6, rtol=EXACT),
        "at u* the owned TCO equals the rent for the same useful GPU-hours by construction "
        "(1e-9); a u* taken from a TCO without power or hosting misses by that cost",
    )
    for u in (1.0, 0.7):
        matching = s.tco(impl, u) / (s.gpus * s.years * HOURS_PER_YEAR)
        report.metric(
            f"reserved rate that ties with owning, both used {u:.0%}",
            f"{matching:.2f}",
            "USD/GPU-h",
        )


if __name__ == "__main__":
    print_check_of(__name__)
