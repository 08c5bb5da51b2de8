"""A contextual anomaly detector of the CAD OSE kind (Contextual Anomaly Detector, Open
Source Edition, M. Smirnov 2016, the best open detector of the NAB leaderboard), written
here from its description: values are discretised into a few bits ("facts"); the detector
learns contexts, pairs of a left side (the facts and active contexts of the previous
step) and a right side (the facts that followed), and from the contexts whose left side
the present matches whole it predicts the next facts. A value the predictions did not
expect scores by how little of what was selected came true and how much had to be
learnt anew; after a high score the detector rests, so an episode is reported once.

``x["value"]`` is the value; the range it is discretised over is given (NAB gives every
detector the series' minimum and maximum) or, without one, taken from the first
``learn_range`` values with a margin (they score 0). Scoring a value learns it, as the
method is one step: ``learn_one`` after ``score_one`` of the same value does nothing.
Memory grows with the contexts learnt, up to ``max_contexts``.

>>> detector = ContextualDetector(low=0.0, high=7.0)
>>> scores = []
>>> for value in [1.0, 5.0] * 200 + [3.0]:
...     scores.append(detector.score_one({"value": value}))
...     detector.learn_one({"value": value})
>>> max(scores[100:-1]), scores[-1] > 0.5  # a learnt rhythm, then a value it never held
(0.0, True)
"""

from dataclasses import dataclass, field

from river import base

from kubeopera.streams.detectors import Features

SENSOR = 1 << 16  # a fact of the value: SENSOR + 2 * bit + the bit's value
NEURON = 1 << 31  # a fact of an active context: NEURON + its number

Facts = tuple[int, ...]


@dataclass
class _Side:
    """A semi-context: its facts, those the present matched, and (a left side) the
    context it forms with each right side."""

    facts: Facts
    matched: list[int] = field(default_factory=list)
    contexts: dict[int, int] = field(default_factory=dict)


@dataclass
class _Context:
    number: int
    right: int  # its right side
    zero_level: bool  # learnt from two whole steps, not from a crossing
    predicted: int = 0  # facts its left side predicted when matched whole
    came: int = 0  # of those, the facts that came
    active: int = 0  # times both sides were matched whole


class ContextualDetector(base.AnomalyDetector):
    """``bits``: the value's resolution (2 ** bits levels); ``threshold`` and ``rest``:
    after a score of ``threshold`` or more the next ``rest`` values score 0;
    ``max_left``: the longest left side a crossing learns; ``max_active``: how many
    active contexts join the next left side."""

    def __init__(
        self,
        low: float | None = None,
        high: float | None = None,
        bits: int = 3,
        threshold: float = 0.75,
        rest: int = 30,
        max_left: int = 7,
        max_active: int = 15,
        learn_range: int = 100,
        max_contexts: int = 200_000,
    ) -> None:
        self.low, self.high = low, high
        self.bits, self.threshold, self.rest = bits, threshold, rest
        self.max_left, self.max_active = max_left, max_active
        self.learn_range, self.max_contexts = learn_range, max_contexts
        self._seen: list[float] = []
        self._left: Facts = ()  # the previous step's facts and active contexts
        self._predicted: set[int] = set()
        self._recent = [1.0]  # the last scores (the start rests)
        self._numbers: tuple[dict[Facts, int], dict[Facts, int]] = ({}, {})
        self._sides: tuple[list[_Side], list[_Side]] = ([], [])
        self._by_fact: tuple[dict[int, list[_Side]], dict[int, list[_Side]]] = ({}, {})
        self._crossed: tuple[list[_Side], list[_Side]] = ([], [])
        self._contexts: list[_Context] = []
        self._scored: tuple[float, float] | None = None  # a value scored, not yet learnt

    def score_one(self, x: Features) -> float:
        value = float(x["value"])
        if self._scored is None or self._scored[0] != value:
            self._scored = (value, self._step(value))
        return self._scored[1]

    def learn_one(self, x: Features) -> None:
        value = float(x["value"])
        if self._scored is not None and self._scored[0] == value:
            self._scored = None  # scoring learnt it
        else:
            self._step(value)

    # -- one step -----------------------------------------------------------------

    def _step(self, value: float) -> float:
        if self.low is None or self.high is None:
            self._seen.append(value)
            if len(self._seen) < self.learn_range:
                return 0.0
            low, high = min(self._seen), max(self._seen)
            margin = (high - low) * 0.25 or 1.0
            self.low, self.high = low - margin, high + margin
        facts = self._facts(value)
        missed = any(f not in self._predicted for f in facts)
        selected_came, learnt_new = self._learn(facts)
        score = (1.0 - selected_came + learnt_new) / 2.0 if missed else 0.0
        resting = max(self._recent) >= self.threshold
        self._recent = [*self._recent, score][-self.rest :]
        return 0.0 if resting else score

    def _facts(self, value: float) -> Facts:
        assert self.low is not None and self.high is not None
        top = 2**self.bits - 1
        step = (self.high - self.low) / top or 1.0
        level = min(max(int((value - self.low) / step), 0), top)
        return tuple(SENSOR + 2 * bit + ((level >> bit) & 1) for bit in range(self.bits))

    def _learn(self, facts: Facts) -> tuple[float, float]:
        """Learn the step from the last left side to ``facts``; returns the share of
        selected contexts that came true whole, and the share of candidate new contexts
        that were new."""
        candidates: set[tuple[Facts, Facts]] = set()
        new_zero_level = None
        if self._left:
            candidates.add((self._left, facts))
            new_zero_level = self._remember_zero_level(self._left, facts)
        self._cross(1, facts)
        active, selected, crossings = self._settle(new_zero_level)
        candidates.update(crossings)
        came = len(active) / selected if selected else 0.0
        active.sort(key=lambda c: (c.active, c.number))
        neurons = [NEURON + c.number for c in active[-self.max_active :]]
        self._left = tuple(sorted({*facts, *neurons}))
        learnt = self._remember(crossings)
        self._predicted = self._predict()
        if new_zero_level is not None:
            learnt += 1
        share_new = learnt / len(candidates) if new_zero_level is not None and candidates else 0.0
        return came, share_new

    def _remember_zero_level(self, left_facts: Facts, right_facts: Facts) -> int | None:
        """Learn the context of two whole steps; its number when it is new, else None."""
        left, right = self._side(0, left_facts), self._side(1, right_facts)
        known = self._sides[0][left].contexts.get(right)
        if known is not None:
            self._contexts[known].zero_level = True
            return None
        return self._add(left, right, zero_level=True)

    def _remember(self, pairs: list[tuple[Facts, Facts]]) -> int:
        """Learn the contexts of ``pairs`` not known yet; returns how many were new."""
        learnt = 0
        for left_facts, right_facts in pairs:
            left, right = self._side(0, left_facts), self._side(1, right_facts)
            if right not in self._sides[0][left].contexts:
                learnt += self._add(left, right, zero_level=False) is not None
        return learnt

    def _add(self, left: int, right: int, zero_level: bool) -> int | None:
        """A new context's number (None past ``max_contexts``: nothing more is learnt)."""
        if len(self._contexts) >= self.max_contexts:
            return None
        number = len(self._contexts)
        self._sides[0][left].contexts[right] = number
        self._contexts.append(_Context(number, right, zero_level))
        return number

    def _side(self, which: int, facts: Facts) -> int:
        numbers = self._numbers[which]
        if facts not in numbers:
            numbers[facts] = len(self._sides[which])
            side = _Side(facts)
            self._sides[which].append(side)
            for fact in facts:
                self._by_fact[which].setdefault(fact, []).append(side)
        return numbers[facts]

    def _cross(self, which: int, facts: Facts) -> None:
        """Match ``facts`` against the sides of ``which`` (0 left, 1 right)."""
        for side in self._crossed[which]:
            side.matched = []
        crossed: dict[int, _Side] = {}
        for fact in facts:
            for side in self._by_fact[which].get(fact, []):
                side.matched.append(fact)
                crossed[id(side)] = side
        self._crossed[which][:] = crossed.values()

    def _settle(self, new: int | None) -> tuple[list[_Context], int, list[tuple[Facts, Facts]]]:
        """For each context whose left side the last step matched: count what it
        predicted and what came; the active ones (both sides matched whole); the new
        contexts the partial matches suggest (only while zero-level ones are learnt)."""
        active, selected, crossings = [], 0, []
        rights = self._sides[1]
        for left in self._crossed[0]:
            whole_left = len(left.matched) == len(left.facts)
            for right_number, number in left.contexts.items():
                if number == new:
                    continue
                context, right = self._contexts[number], rights[right_number]
                hits = len(right.matched)
                if whole_left:
                    selected += 1
                    context.predicted += len(right.facts)
                    if hits:
                        context.came += hits
                        if hits == len(right.facts):
                            context.active += 1
                            active.append(context)
                            continue
                learn = context.zero_level and new is not None and hits
                if learn and len(left.matched) <= self.max_left:
                    crossings.append((tuple(left.matched), tuple(right.matched)))
        return active, selected, crossings

    def _predict(self) -> set[int]:
        """The right facts of the best-predicting contexts whose left side the new left
        side matches whole."""
        self._cross(0, self._left)
        best, predicted = 0.0, []
        for left in self._crossed[0]:
            if len(left.matched) != len(left.facts):
                continue
            for number in left.contexts.values():
                context = self._contexts[number]
                weight = context.came / context.predicted if context.predicted else 0.0
                if weight > best:
                    best, predicted = weight, [context]
                elif weight == best:
                    predicted.append(context)
        return {f for c in predicted for f in self._sides[1][c.right].facts}
