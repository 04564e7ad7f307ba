"""Money as a ledger: every transfer debits a payer and credits a payee, so money is conserved by construction.

Accounts are organisations (by index) plus sinks for resources that leave the system: care delivered,
transaction costs, running costs and VAT paid to HMRC. The funder's balance goes negative by what it
allocates. `balance_error()` checks the books from separately kept totals rather than re-deriving them.
"""
from __future__ import annotations

import numpy as np

SINKS = ("care", "transaction", "running", "vat")
FLOW_KINDS = ("allocation", "tariff", "block", "capitation", "wpap", "fee", "settlement", "support", "loan")


class Ledger:
    def __init__(self, n_orgs: int, opening: np.ndarray, funder: int):
        self.n_orgs = n_orgs
        self.funder = funder
        self.sink_index = {s: n_orgs + i for i, s in enumerate(SINKS)}
        n = n_orgs + len(SINKS)
        self.balance = np.zeros(n)
        self.balance[:n_orgs] = opening
        self.opening = self.balance.copy()
        # separately kept totals for the conservation check
        self.allocated = 0.0            # everything the funder has paid out
        self.sunk = dict.fromkeys(SINKS, 0.0)
        # per-organisation income and cost in the current year (for finance records and failure tests)
        self.year_income = np.zeros(n_orgs)
        self.year_cost = np.zeros(n_orgs)
        # money paid through contracts this month, by payment kind (for population_payment_share)
        self.month_flow = dict.fromkeys(FLOW_KINDS, 0.0)

    def grow(self, k: int = 1) -> None:
        """Add k organisation accounts (successor providers after a failure)."""
        n_old = self.n_orgs
        sinks = self.balance[n_old:]
        self.balance = np.concatenate([self.balance[:n_old], np.zeros(k), sinks])
        self.opening = np.concatenate([self.opening[:n_old], np.zeros(k), self.opening[n_old:]])
        self.year_income = np.concatenate([self.year_income, np.zeros(k)])
        self.year_cost = np.concatenate([self.year_cost, np.zeros(k)])
        self.n_orgs += k
        self.sink_index = {s: self.n_orgs + i for i, s in enumerate(SINKS)}

    def transfer(self, payer: int, payee: int, amount: float, kind: str = "fee") -> None:
        """Move money between two organisations; a negative amount moves it the other way."""
        if amount == 0.0:
            return
        if amount < 0:
            payer, payee, amount = payee, payer, -amount
        self.balance[payer] -= amount
        self.balance[payee] += amount
        self.year_cost[payer] += amount
        self.year_income[payee] += amount
        if payer == self.funder:
            self.allocated += amount
        if payee == self.funder:
            self.allocated -= amount
        if kind in self.month_flow:
            self.month_flow[kind] += amount

    def lend(self, lender: int, borrower: int, amount: float) -> None:
        """Financing, not income: cash moves (a negative amount repays) but neither side's income or cost
        for the year changes, so a loan never counts as bearing a cost."""
        if amount == 0.0:
            return
        self.balance[lender] -= amount
        self.balance[borrower] += amount
        if lender == self.funder:
            self.allocated += amount
        self.month_flow["loan"] += amount

    def spend(self, payer: int, amount: float, sink: str = "care") -> None:
        """Resources used up: money leaves the payer for a sink."""
        if amount == 0.0:
            return
        self.balance[payer] -= amount
        self.balance[self.sink_index[sink]] += amount
        self.year_cost[payer] += amount
        self.sunk[sink] += amount
        if payer == self.funder:
            self.allocated += amount

    def spend_many(self, payers: np.ndarray, amounts: np.ndarray, sink: str = "care") -> None:
        """Vectorised `spend` (e.g. every practice's monthly costs at once)."""
        total = float(amounts.sum())
        if total == 0.0:
            return
        np.subtract.at(self.balance, payers, amounts)
        np.add.at(self.year_cost, payers, amounts)
        self.balance[self.sink_index[sink]] += total
        self.sunk[sink] += total

    def transfer_many(self, payer: int, payees: np.ndarray, amounts: np.ndarray, kind: str) -> None:
        """One payer, many payees (e.g. capitation to every practice)."""
        total = float(amounts.sum())
        if total == 0.0:
            return
        self.balance[payer] -= total
        np.add.at(self.balance, payees, amounts)
        self.year_cost[payer] += total
        np.add.at(self.year_income, payees, amounts)
        if payer == self.funder:
            self.allocated += total
        if kind in self.month_flow:
            self.month_flow[kind] += total

    def reserves(self, idx: int) -> float:
        return float(self.balance[idx])

    def system_cost(self) -> float:
        """Resources used by the whole system so far (care, transaction, running costs and VAT)."""
        return float(sum(self.sunk.values()))

    def balance_error(self) -> float:
        """|allocations - costs - sum of changes in reserves| over all non-funder accounts (~0)."""
        orgs = np.arange(self.n_orgs) != self.funder
        delta = float((self.balance[: self.n_orgs][orgs] - self.opening[: self.n_orgs][orgs]).sum())
        return abs(self.allocated - self.system_cost() - delta)

    def start_month(self) -> None:
        for k in self.month_flow:
            self.month_flow[k] = 0.0

    def close_year(self) -> tuple[np.ndarray, np.ndarray]:
        """Return this year's income and cost per organisation and start a new year."""
        inc, cost = self.year_income.copy(), self.year_cost.copy()
        self.year_income[:] = 0.0
        self.year_cost[:] = 0.0
        return inc, cost
