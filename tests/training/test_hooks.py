"""The run's hooks: when each kind is due, and how a restart or a stop ends a step's hooks."""

from __future__ import annotations

from distgan.training import hooks


def test_intervals_zero_means_the_last_step_or_never():
    assert [s for s in range(1, 8) if hooks.at_interval(3, s, s == 7)] == [3, 6, 7]
    assert [s for s in range(1, 8) if hooks.at_interval(0, s, s == 7)] == [7]  # samples, checkpoints
    assert [s for s in range(1, 8) if hooks.when_enabled(3, s, s == 7)] == [3, 6, 7]
    assert [s for s in range(1, 8) if hooks.when_enabled(0, s, s == 7)] == []  # evaluation, consistency check


class Recorder(hooks.Hook):
    def __init__(self, name: str, calls: list[str], every: int = 1, outcome: hooks.Outcome = None) -> None:
        self.name, self.calls, self.every, self.outcome = name, calls, every, outcome

    def due(self, step: int, last: bool) -> bool:
        return step % self.every == 0

    def __call__(self, step: int, last: bool) -> hooks.Outcome:
        self.calls.append(f"{self.name}@{step}")
        return self.outcome


def test_due_hooks_run_in_order_and_a_restart_skips_the_rest_of_the_step():
    calls: list[str] = []
    ordered = [Recorder("log", calls), Recorder("samples", calls, every=2), Recorder("checkpoint", calls)]
    assert hooks.run_due(ordered, 1, False) is None and hooks.run_due(ordered, 2, False) is None
    assert calls == ["log@1", "checkpoint@1", "log@2", "samples@2", "checkpoint@2"]
    calls.clear()
    rollback = [Recorder("nonfinite", calls, outcome=hooks.RESTART), Recorder("checkpoint", calls)]
    assert hooks.run_due(rollback, 5, False) == hooks.RESTART and calls == ["nonfinite@5"]


def test_the_stopwatch_counts_images_since_its_last_reading_and_restarts_after_a_rollback():
    clock = hooks.Stopwatch(images=100)
    assert clock.images_per_second(164) > 0
    clock.restart(64)  # a rollback: the image count went back
    assert clock.images_per_second(96) > 0
