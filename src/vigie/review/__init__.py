"""Review of unknown material: the queue, decisions with consensus, analyst wellbeing, encrypted media.

Known material (anything a bank matches) never enters the queue and is never displayed.
See docs/review.md. The web app calls these functions; they take the store and settings
they work on, and a clock where time matters.
"""

from vigie.review.clock import Clock, FixedClock, SystemClock
from vigie.review.decisions import DEFAULT_CATEGORIES, Category, categories, decide, resolve
from vigie.review.queue import (
                                SOURCES,
                                cluster_view,
                                enqueue_media,
                                enqueue_scan,
                                enqueue_upload,
                                list_queue,
                                next_cluster,
                                reprioritise,
)
from vigie.review.wellbeing import ExposureTracker, ReviewLocked, WellbeingPolicy, effective_policy, team_exposure

__all__ = ["Clock", "FixedClock", "SystemClock", "DEFAULT_CATEGORIES", "Category", "categories", "decide",
           "resolve", "SOURCES", "cluster_view", "enqueue_media", "enqueue_scan", "enqueue_upload", "list_queue",
           "next_cluster", "reprioritise", "ExposureTracker", "ReviewLocked", "WellbeingPolicy",
           "effective_policy", "team_exposure"]
