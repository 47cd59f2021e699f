from dataclasses import dataclass
from typing import Any
@dataclass(frozen=True)
class FitResult:
    spec: Any
    idata: Any
    settings: Any
    diagnostics: Any
