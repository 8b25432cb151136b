"""Which rows of a leaderboard could be the best: the statistics' best set, or (before it existed) the rows tied
with the best."""
from __future__ import annotations

from benchmark.report.leaderboard import Leaderboard, MetricCell


def could_be_best(cell: MetricCell) -> bool:
    """Whether a row's main-metric cell is in the best set: the bootstrap's `in_best_set` when it states one, else
    the best row and the rows whose paired interval to it contains 0."""
    stated = getattr(cell.boot, "in_best_set", None)
    if stated is not None:
        return bool(stated)
    return cell.best or (cell.boot is not None and cell.boot.tied is True)


def best_set(board: Leaderboard) -> set[str]:
    """The labels of a leaderboard's rows that could be best on its main metric."""
    return {label for label, cells in board.rows if could_be_best(cells[board.main_metric])}
