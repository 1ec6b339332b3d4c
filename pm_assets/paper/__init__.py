"""Paper layer: the paper-trading ledger on the allocations, by the one execution model."""

from pm_assets.paper.ledger import paper_ledger

paper_assets = [paper_ledger]

__all__ = ["paper_assets", "paper_ledger"]
