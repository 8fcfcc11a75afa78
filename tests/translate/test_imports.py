"""The model libraries are imported only by the code that translates, never by the CLI or the package itself."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("argostranslate", "ctranslate2", "sentencepiece", "torch", "kiwipiepy", "pysbd", "stanza", "markdown_it",
         "sacrebleu", "numpy")


def test_loading_the_translation_commands_imports_no_model_library() -> None:
    code = (
        "import sys\n"
        "import publisher.translate, publisher.translate.policy, publisher.cli.translate\n"
        "import publisher.translate.registry, publisher.translate.ct2models, publisher.translate.ct2\n"
        "import publisher.translate.evaluate\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()

    assert loaded == ""
