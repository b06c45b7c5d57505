"""Which model runs on which back end: the settings every deployment of perception shares
(the split `perception` node, the fused `robot` node, headless closed-loop runs), so that
their defaults cannot drift apart."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Literal

from ..config import spec
from ..paths import resolve_model

if TYPE_CHECKING:
    from .runtime import StreamingPerception


@dataclass(frozen=True)
class EngineConfig:
    model: str = spec("", help="model .npz with its manifest beside it ('' = the shipped model)")
    backend: Literal["onnxruntime", "torch", "lava"] = spec(
        "onnxruntime", help="inference back end (onnxruntime: the fastest on a CPU; lava: Loihi 2 through Lava)")
    lava_tag: Literal["floating_pt", "fixed_pt"] = spec(
        "floating_pt", help="lava: floating_pt, or fixed_pt (bit-accurate Loihi 2)")
    providers: List[str] = spec(default_factory=lambda: ["CPUExecutionProvider"],
                                help="onnxruntime: execution providers, in order of preference")
    torch_threads: int = spec(1, lo=1, hi=256, help="torch: intra-op threads")
    temporal_prior: bool = spec(True, help="carry each decision's belief into the next (where the model was "
                                           "calibrated with one; perception/temporal_prior.py)")


def open_engine(cfg: EngineConfig) -> "StreamingPerception":
    """The model of `cfg` on its back end (raises ModelFileError for a bad model file)."""
    from .runtime import StreamingPerception      # torch and the back ends: only when a model is opened

    if cfg.backend == "torch":
        import torch

        torch.set_num_threads(cfg.torch_threads)
    options = {"onnxruntime": {"providers": list(cfg.providers)},
               "lava": {"tag": cfg.lava_tag}}.get(cfg.backend, {})
    return StreamingPerception.from_file(resolve_model(cfg.model), cfg.backend, cfg.temporal_prior, **options)
