"""What an RTL unit builds against what its configuration's latencies ask (`spec.timing`)."""
from isa import spec
from isa.config import ChipConfig


def check_latencies(config: ChipConfig, natural: dict, who: str, sep: str = ",", stretch: str | None = None,
                    most: int = 1):
    """Refuse `config` in one line if a latency differs from the one the unit builds (`natural`);
    `stretch` names the one latency the unit also builds up to `most` cycles longer (extra registers)."""
    T = spec.timing(config)
    for key, v in natural.items():
        if T[key] != v and not (key == stretch and v < T[key] <= v + most):
            also = "" if key != stretch else f" or {v + 1}" if most == 1 else f" to {v + most}"
            raise NotImplementedError(f"{who} implements {key} = {v}{also}{sep} config {config.name!r} says {T[key]}")
