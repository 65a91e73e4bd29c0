"""The built-in text-document domain: synthetic document crops of English text, sharp and blurred.

Modelled on the BMVC text deblurring data of Hradis et al. (2015): crops of document pages in many fonts,
sizes, line spacings, ink and paper tones, slightly rotated, with paper texture; blurred with camera shake,
defocus and noise. Everything is generated offline from matplotlib's bundled fonts (plus usable system
fonts) and `wordfreq`'s English word list.

Unpaired by construction: the sharp and blurred training sets share no line of text (nor any uncommon word),
and the test text is unseen in training (vocab.py).

Modules: config.py (TextDomainConfig, its blur), vocab.py (the three text streams), page.py (page layout and
crops), paper.py (paper, ink, light), domain.py (the folder on disk, meta.json, worker processes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import APPEARANCES, TextDomainConfig, builtin_config, documents_blur, without_training
from .domain import GENERATOR, TEXT_DOMAIN_VERSION, domain_meta, make_text_domain, read_domain_meta
from .page import render_page, render_text_crop
from .vocab import STREAMS

if TYPE_CHECKING:
    from ..builtin import BuiltinDomain



def builtin_domain() -> BuiltinDomain:
    """This domain for data/builtin.py's registry; it reads this package's names at each call (tests patch them)."""
    from ..builtin import BuiltinDomain

    return BuiltinDomain(config=builtin_config, meta=domain_meta, read_meta=read_domain_meta, make=make_text_domain,
                         without_training=without_training)


__all__ = [
    "APPEARANCES",
    "GENERATOR",
    "STREAMS",
    "TEXT_DOMAIN_VERSION",
    "TextDomainConfig",
    "builtin_config",
    "builtin_domain",
    "documents_blur",
    "domain_meta",
    "make_text_domain",
    "read_domain_meta",
    "render_page",
    "render_text_crop",
    "without_training",
]
