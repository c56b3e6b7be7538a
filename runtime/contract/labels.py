"""Activity label tables (HAPT ids) and the named tasks built on them."""
from __future__ import annotations

from typing import Dict, Tuple

#: HAPT / UCI HAR label ids as the dataset defines them; -1 marks unlabelled samples.
UNLABELLED = -1
HAPT_LABELS: Dict[int, str] = {
    1: "walking",
    2: "walking_upstairs",
    3: "walking_downstairs",
    4: "sitting",
    5: "standing",
    6: "laying",
    7: "stand_to_sit",
    8: "sit_to_stand",
    9: "sit_to_lie",
    10: "lie_to_sit",
    11: "stand_to_lie",
    12: "lie_to_stand",
}

#: Task name -> (label ids in model output order, minimum label fraction for a window).
#: har6 keeps only windows of one pure activity: a window that straddles two activities has no
#: single true answer, and UCI HAR's own windows were cut the same way. hapt12 accepts a 60 %
#: majority because postural transitions last only 2-5 s, so pure 2.56 s windows of them are rare.
TASKS: Dict[str, Tuple[Tuple[int, ...], float]] = {
    "har6": ((1, 2, 3, 4, 5, 6), 1.0),
    "hapt12": (tuple(range(1, 13)), 0.6),
}


def task_labels(task: str) -> Tuple[Tuple[int, ...], Tuple[str, ...], float]:
    """Return (label ids, label names, min label fraction) for a task name."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {sorted(TASKS)}")
    ids, fraction = TASKS[task]
    return ids, tuple(HAPT_LABELS[i] for i in ids), fraction
