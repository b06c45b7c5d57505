"""What a perception model's output logits mean: its head.

Two heads, told apart by the model manifest:
- `classes`: the four-class task of `labels` (clear / obstacle left / centre / right) in one
  softmax; targets (N,), confidence of that softmax.
- `sectors`: one softmax of K range classes for each of the S sectors of the field of view
  (`sectors.SectorSpec`, the manifest's "sectors" section); targets (N, S), accuracy is the
  fraction of sectors right, early exit reads the least certain sector's confidence. The
  four-class label of such a model is derived from its sectors (`sectors.summary_label`).

Either way the network has one more output, the approaching logit, after these. Plain numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import ModelFileError
from .labels import CENTER, CLASSES, CLEAR, LEFT, RIGHT, LabelConfig
from .sectors import SectorSpec, summary_label

MIRROR_CLASSES = np.array([CLEAR, RIGHT, CENTER, LEFT])  # four-class label after a left-right flip


@dataclass(frozen=True)
class Head:
    sectors: Optional[SectorSpec] = None     # None: the four-class head

    @property
    def kind(self) -> str:
        return "classes" if self.sectors is None else "sectors"

    @property
    def groups(self) -> int:
        """Softmaxes in the output (1 for the four-class head)."""
        return 1 if self.sectors is None else self.sectors.count

    @property
    def sector_rad(self) -> float:
        """A sector's width (0 for the four-class head, which has no bearings to turn)."""
        return 0.0 if self.sectors is None else self.sectors.width_rad

    @property
    def classes_per_group(self) -> int:
        return len(CLASSES) if self.sectors is None else self.sectors.classes

    @property
    def logits(self) -> int:
        """Class logits of the network (the approaching logit comes after them)."""
        return self.groups * self.classes_per_group

    def targets(self, y: np.ndarray, sector_m: np.ndarray) -> np.ndarray:
        """Training targets from a dataset's four-class labels `y` (N,) and sector ranges (N, S)."""
        if self.sectors is None:
            return np.asarray(y, dtype=np.int64)
        if sector_m.shape[1] != self.sectors.count:
            raise ValueError(f"the data has {sector_m.shape[1]} sectors, the head {self.sectors.count}")
        return self.sectors.grade(sector_m).astype(np.int64)

    def mirrored(self, targets: np.ndarray) -> np.ndarray:
        """Targets of left-right mirrored inputs."""
        if self.sectors is None:
            return MIRROR_CLASSES[targets]
        return targets[..., ::-1].copy()

    def class_names(self) -> list:
        """Names of the classes of one group (range bands for sectors)."""
        if self.sectors is None:
            return list(CLASSES)
        e = self.sectors.edges_m
        return ([f"<{e[0]:g} m"] + [f"{a:g}-{b:g} m" for a, b in zip(e, e[1:])] + [f">={e[-1]:g} m"])

    def summary(self, predictions: np.ndarray, labels: LabelConfig) -> np.ndarray:
        """Four-class labels (N,) of predictions (N,) or (N, S)."""
        if self.sectors is None:
            return np.asarray(predictions)
        return np.array([summary_label(self.sectors, p, labels.near_m) for p in predictions], dtype=np.int64)

    def manifest(self) -> dict:
        """The manifest entries that describe this head."""
        out = {"classes": list(CLASSES), "head": self.kind}
        if self.sectors is not None:
            out["sectors"] = {**self.sectors.as_manifest(), "range_classes": self.class_names()}
        return out

    @classmethod
    def of(cls, manifest: dict) -> "Head":
        return cls(SectorSpec.from_manifest(manifest))


def check_field_of_view(head: Head, hfov_deg: float) -> None:
    """Refuse a sector model trained for another field of view than the camera's: its sectors
    would be laid over the wrong bearings, and what it learnt of the image's geometry (where an
    edge meets the floor, how fast it moves across the view) would not hold."""
    spec = head.sectors
    if spec is not None and not spec.fits(hfov_deg):
        raise ModelFileError(
            f"the model's {spec.count} sectors span a {spec.hfov_deg:g} deg field of view, the camera's is "
            f"{float(hfov_deg):g} deg: train a model for this camera (snn-autonomy train --world W, "
            "--init to start from this one)")
